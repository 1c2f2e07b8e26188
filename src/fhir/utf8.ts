/**
 * FHIR's JSON is UTF-8. Decoding leniently turns bytes that are not UTF-8 into U+FFFD, which
 * would then be stored in place of the sender's characters; this decoder refuses them instead.
 * ignoreBOM keeps a byte-order mark in the text, where JSON.parse refuses it as it always has.
 */
const strictUtf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** The text of `bytes`, or undefined when they are not UTF-8. */
export function decodeUtf8(bytes: Uint8Array): string | undefined {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return undefined;
  }
}
