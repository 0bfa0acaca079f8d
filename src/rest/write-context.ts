/**
 * The names the write interactions and modules use for the unit of work (rest/unit-of-work.ts):
 * a `WriteContext` is the unit a write runs in; `runWrite` runs one in its own transaction.
 */
export type {
  Change,
  RestServices,
  TransactionViews,
  WriteHandler,
  WriteModule,
  WriteTarget,
} from './unit-of-work.js';
export { runUnitOfWork as runWrite } from './unit-of-work.js';
import type { UnitOfWork } from './unit-of-work.js';
export type WriteContext = UnitOfWork;
