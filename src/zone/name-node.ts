/**
 * One name of a zone (ZoneNode) as buildZone makes it: the node is its own
 * table of RRsets, one object per name instead of a node pointing at an
 * RRsets (~40 octets a name: with 10,000 zones of ten names, ~3.6 MB of heap).
 * An empty non-terminal is a node with no RRsets; the flag is derived, not kept.
 *
 * Read-only after construction. Structured clone (UDP worker threads) turns it
 * into plain data (`{ sets, name, key }`): `NameNode.revive` makes it whole.
 */
import { RRsets } from './rrsets.ts';
import type { RRset, ZoneNode } from './zone.ts';

export class NameNode extends RRsets implements ZoneNode {
  readonly name: string;
  readonly key: string;

  constructor(name: string, key: string, sets: readonly RRset[]) {
    super(sets);
    this.name = name;
    this.key = key;
  }

  /** A node that crossed threads as plain data, made whole again. */
  static reviveNode(plain: ZoneNode | { readonly name: string; readonly key: string; readonly sets: RRset | readonly RRset[] }): NameNode {
    const p = plain as { readonly name: string; readonly key: string; readonly sets: RRset | readonly RRset[] };
    return new NameNode(p.name, p.key, RRsets.revive(p).list);
  }

  get rrsets(): RRsets {
    return this;
  }

  /** A name with no data of its own but with descendants (RFC 4592 §2.2.2). */
  get emptyNonTerminal(): boolean {
    return this.size === 0;
  }

  /** A copy of this node with `set` in place of the RRset of its type (or added). */
  override with(set: RRset): NameNode {
    return new NameNode(this.name, this.key, super.with(set).list);
  }
}
