#!/usr/bin/env node
// Thin launcher: Node >= 22.18 strips TypeScript types natively, so the CLI runs from src/.
await import('../src/main.ts');
