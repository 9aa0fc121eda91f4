/**
 * Runs in every test file (vitest setupFiles): after the file, the temp
 * directories its helpers made are removed. A process exit hook is not enough:
 * vitest ends its worker processes without running them.
 */
import { afterAll } from 'vitest';
import { removeTempDirs } from './spawn.ts';

afterAll(() => removeTempDirs());
