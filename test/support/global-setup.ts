/** Installs the Debian tools once, up front, so no test pays for apt inside its timeout. */
import { ensureTool, TOOLS } from './tools.ts';

export default function setup(): void {
  for (const { binary, pkg } of TOOLS) ensureTool(binary, pkg);
}
