import { ratio, round } from '../stats.js';
import { PROPORTION_DIGITS, UCUM, type GroupResult, type Score } from './types.js';

/** A proportion group: initial population, denominator, numerator and their quotient. */
export function proportion(initial: number, denominator: number, numerator: number): GroupResult {
  const value = ratio(numerator, denominator);
  return {
    populations: { 'initial-population': initial, denominator, numerator },
    ...(value !== undefined ? { score: fraction(value) } : {}),
  };
}

export function fraction(value: number): Score {
  return { value: round(value, PROPORTION_DIGITS), unit: '1', system: UCUM, code: '1' };
}

export function days(value: number, digits: number): Score {
  return { value: round(value, digits), unit: 'd', system: UCUM, code: 'd' };
}
