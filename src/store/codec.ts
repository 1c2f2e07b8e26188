/**
 * The one path resource bodies take to and from storage. Plain JSON today; encryption at
 * rest replaces this module's implementation without touching stores or routes.
 */
export interface BodyCodec {
  encode(json: string): string;
  decode(stored: string): string;
}

export const plainJsonCodec: BodyCodec = {
  encode: (json) => json,
  decode: (stored) => stored,
};
