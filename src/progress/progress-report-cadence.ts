/**
 * Is a progress report due after this many attended visits? Every `everyNVisits` visits: US Medicare
 * asks for a progress report at least once every 10 treatment days (CMS Medicare Benefit Policy
 * Manual, Chapter 15, §220.3.D), and practices often report more often; the cadence is the caller's.
 */
export function isProgressReportDue(attendedVisitCount: number, everyNVisits: number): boolean {
  if (!Number.isInteger(everyNVisits) || everyNVisits < 1) {
    throw new RangeError(`everyNVisits must be a positive integer, not ${everyNVisits}`);
  }
  if (!Number.isInteger(attendedVisitCount) || attendedVisitCount < 0) {
    throw new RangeError(`attendedVisitCount must be a non-negative integer, not ${attendedVisitCount}`);
  }
  return attendedVisitCount > 0 && attendedVisitCount % everyNVisits === 0;
}
