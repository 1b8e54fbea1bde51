/*
 * ids: the session id every call gets, on every platform: 32 hex digits, the first 12 the
 * time in milliseconds (rows land on the rightmost page of the session index), the rest 80
 * random bits (unguessable). Random bytes come from a per-thread block, so no lock.
 */
#ifndef SB_IDS_H
#define SB_IDS_H

/* A new session id into out (32 hex digits and a NUL). */
void ids_session(char out[33]);

#endif
