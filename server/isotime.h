/*
 * isotime: the calendar checks behind every date and instant a request carries (query strings,
 * form fields), so that 2026-13-45 or 2026-02-30T25:61:00Z is refused with a 400 rather than
 * rolled over by timegm() or compared as text. Pure functions.
 */
#ifndef SB_ISOTIME_H
#define SB_ISOTIME_H

/* 1 when the fields name a real moment: month 1-12, the day within that month (leap years by
 * the Gregorian rule), hour 0-23, minute 0-59, second 0-60 (a leap second). */
int isotime_valid(int year, int month, int day, int hour, int minute, int second);

/* 1 when s is exactly YYYY-MM-DD and a real day. */
int isotime_date(const char *s);

#endif
