import { createRequire } from 'node:module';
import { isResourceType } from '../definitions.js';

/**
 * Where a resource can link to another entry of a transaction, by element type (FHIR R4
 * http.html#trules): "Servers SHALL replace all matching links in the bundle, whether they are
 * found in the resource ids, resource references, elements of type uri, url, oid, uuid, and
 * <a href="" & <img src="" in the narrative. Elements of type canonical are not replaced."
 *
 * Built once from the R4 model fhirpath.js ships (the paths and types of every element), as a
 * tree of shapes: per type or backbone element, the JSON properties worth looking into. The
 * walk then costs one map lookup per property, whatever the resource.
 */

interface Model {
  path2Type: Record<string, string>;
  pathsDefinedElsewhere: Record<string, string>;
  type2Parent: Record<string, string>;
}

/**
 * What a property holds: a Reference.reference, a uri or url, a Narrative.div, any
 * resource (contained, Bundle.entry.resource: its own resourceType says which), or an element
 * with properties of its own.
 */
export type LinkSlot = 'reference' | 'uri' | 'narrative' | 'resource' | LinkShape;
export type LinkShape = ReadonlyMap<string, LinkSlot>;

/**
 * The specification's list names oid and uuid too, but what replaces a placeholder (`Binary/123`)
 * is neither an OID nor a UUID: R4 allows only `urn:oid:…` and `urn:uuid:…` there, so the
 * resource would fail validation. Such elements keep the value sent. canonical is a kind of uri
 * the specification leaves alone: it names a definition, not an entry.
 */
const URI_TYPES: ReadonlySet<string> = new Set(['uri', 'url']);

/** Complex types are capitalised; so are the model's System.String and friends, which are primitive. */
const isComplexType = (type: string) => /^[A-Z]/.test(type) && !type.startsWith('System.');

class LinkShapes {
  private readonly model = createRequire(import.meta.url)('fhirpath/fhir-context/r4') as Model;
  /** Per element path (or type name): its children's names and types. */
  private readonly children = new Map<string, [name: string, type: string][]>();
  private readonly shapes = new Map<string, Map<string, LinkSlot>>();

  constructor() {
    const add = (path: string, type: string) => {
      const dot = path.lastIndexOf('.');
      if (dot < 0) return;
      const parent = path.slice(0, dot);
      let list = this.children.get(parent);
      if (!list) this.children.set(parent, (list = []));
      list.push([path.slice(dot + 1), type]);
    };
    // Choice elements are there under each of their JSON names (Extension.valueUri: uri).
    for (const [path, type] of Object.entries(this.model.path2Type)) add(path, type);
    // Elements that repeat another's definition (Questionnaire.item.item) are not; slotOf finds them.
    for (const path of Object.keys(this.model.pathsDefinedElsewhere)) add(path, '');
  }

  /** The shape of a type (Attachment) or backbone element (Patient.contact); a profile of a type (SimpleQuantity) takes its base's. */
  shape(path: string): LinkShape | undefined {
    const known = this.shapes.get(path);
    if (known) return known;
    const list = this.children.get(path);
    if (!list) {
      const parent = this.model.type2Parent[path];
      return parent && isComplexType(parent) ? this.shape(parent) : undefined;
    }
    // Registered before its children are, for elements that contain themselves (Questionnaire.item.item).
    const shape = new Map<string, LinkSlot>();
    this.shapes.set(path, shape);
    for (const [name, type] of list) {
      const slot = this.slotOf(`${path}.${name}`, type);
      if (slot !== undefined) shape.set(name, slot);
      // A primitive's id and extensions (`_url`), whose extensions may hold a uri too.
      if (!isComplexType(type) && type !== '') shape.set(`_${name}`, this.shape('Element')!);
    }
    return shape;
  }

  private slotOf(path: string, type: string): LinkSlot | undefined {
    if (path === 'Reference.reference') return 'reference';
    if (URI_TYPES.has(type)) return 'uri';
    if (type === 'xhtml') return 'narrative';
    if (type === 'Resource') return 'resource';
    const elsewhere = this.model.pathsDefinedElsewhere[path];
    if (elsewhere !== undefined) return this.shape(elsewhere);
    if (this.children.has(path)) return this.shape(path);
    return isComplexType(type) ? this.shape(type) : undefined;
  }
}

let shapes: LinkShapes | undefined;

/** The shape of a resource type; undefined for a type R4 does not define. */
export function resourceShape(resourceType: string): LinkShape | undefined {
  shapes ??= new LinkShapes();
  return isResourceType(resourceType) ? shapes.shape(resourceType) : undefined;
}
