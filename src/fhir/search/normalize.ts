/**
 * String search is case- and accent-insensitive (https://hl7.org/fhir/R4/search.html#string):
 * both the stored value and the search value are folded the same way.
 */
export function normalizeString(value: string): string {
  return value
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase();
}
