// Types for mafintosh's siphash24 (the package ships none): SipHash-2-4, 8-byte output, 16-byte key.
declare module 'siphash24' {
  function siphash24(data: Uint8Array, key: Uint8Array, out?: Uint8Array, noAssert?: boolean): Uint8Array;
  namespace siphash24 {
    const BYTES: number;
    const KEYBYTES: number;
    const WASM_SUPPORTED: boolean;
    const WASM_LOADED: boolean;
  }
  export default siphash24;
}
