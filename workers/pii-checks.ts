// Validity checks that keep PII detection from masking order numbers, tracking numbers and prices.
// Inputs are normalised strings of ASCII digits (an ID may end in 'X'). Pure functions.

/** Mainland China mobile number without country code: 11 digits, 1 then 3-9. */
const CN_MOBILE = /^1[3-9]\d{9}$/;

// First two digits of a resident ID: the province-level region (GB/T 2260), plus Taiwan, Hong Kong
// and Macau. Anything else is not an ID, whatever its checksum says.
const ID_PROVINCES = new Set([
  11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61,
  62, 63, 64, 65, 71, 81, 82,
]);

// GB 11643-1999: weights of the first 17 digits, and the check character for (sum mod 11).
const ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2] as const;
const ID_CHECK_CHARS = '10X98765432';

const ID18 = /^\d{17}[\dX]$/;
const ID15 = /^\d{15}$/;
const DIGITS = /^\d+$/;

/** Shortest and longest bank card numbers (ISO/IEC 7812 PANs), in digits. */
export const CARD_MIN_DIGITS = 13;
export const CARD_MAX_DIGITS = 19;

// Major industry identifier 2-6 covers Visa, Mastercard, UnionPay (62), Amex, JCB, Discover. Long
// digit strings starting otherwise (order numbers such as 2024..., tracking numbers) are left alone
// even when they happen to pass Luhn, which one in ten random strings does.
const CARD_FIRST_DIGITS = /^[2-6]/;

/** True for an 11-digit mainland mobile number (1[3-9] and nine more digits). */
export function isCnMobile(digits: string): boolean {
  return CN_MOBILE.test(digits);
}

/** True when year, month (1-12) and day form a real calendar date (leap years included). */
export function isCalendarDate(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
  return day <= days;
}

/**
 * True for a valid 18-character resident identity number: known province, a real birth date in
 * 1900-2099, and the GB 11643 check character (the last one, a digit or 'X').
 */
export function isNationalId18(id: string): boolean {
  if (!ID18.test(id) || !ID_PROVINCES.has(Number(id.slice(0, 2)))) return false;
  const year = Number(id.slice(6, 10));
  if (year < 1900 || year > 2099) return false;
  if (!isCalendarDate(year, Number(id.slice(10, 12)), Number(id.slice(12, 14)))) return false;
  let sum = 0;
  for (let i = 0; i < ID_WEIGHTS.length; i++) sum += Number(id[i]) * ID_WEIGHTS[i]!;
  return ID_CHECK_CHARS[sum % 11] === id[17];
}

/**
 * True for a plausible 15-digit identity number (the pre-1999 format, which has no check digit):
 * known province and a real birth date YYMMDD in the 1900s.
 */
export function isNationalId15(id: string): boolean {
  if (!ID15.test(id) || !ID_PROVINCES.has(Number(id.slice(0, 2)))) return false;
  return isCalendarDate(1900 + Number(id.slice(6, 8)), Number(id.slice(8, 10)), Number(id.slice(10, 12)));
}

/** True when the digit string passes the Luhn (mod 10) check. */
export function passesLuhn(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 0x30;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

/** True for 13-19 digits that start with 2-6 and pass Luhn. */
export function isBankCard(digits: string): boolean {
  return (
    digits.length >= CARD_MIN_DIGITS &&
    digits.length <= CARD_MAX_DIGITS &&
    DIGITS.test(digits) &&
    CARD_FIRST_DIGITS.test(digits) &&
    passesLuhn(digits)
  );
}
