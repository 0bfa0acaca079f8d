/**
 * Limits on one search, so that a query's size (and the SQL shapes it makes) stays bounded: past
 * any of them the search is refused with a 400 naming the parameter. FHIR sets no such limits
 * (https://hl7.org/fhir/R4/search.html); servers choose theirs.
 */

/** Comma-separated values in one parameter (`_id=a,b,…`, `name=x,y,…`, `_sort`, `_elements`). */
export const MAX_VALUES_PER_PARAMETER = 100;
/** Occurrences of one parameter name (`birthdate=ge…&birthdate=le…`, `_include=…&_include=…`). */
export const MAX_REPEATS_PER_PARAMETER = 10;
/** Parameters in one search, all names together. */
export const MAX_PARAMETERS = 50;
