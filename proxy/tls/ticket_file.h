/* tls/ticket_file.h — the session-ticket key file of a TLS listener
 * (listeners.NAME.tls.ticket_keys_file): the keys every ferry of a fleet shares, so
 * that a ticket one instance issued resumes on any other. Pure: bytes in, keys out
 * (tls/tickets.c reads the file and turns the keys into a struct tls_ticket_keys).
 *
 * A key is 80 bytes: 16 bytes of key name (sent in clear at the start of every
 * ticket, it finds the key again), a 32-byte HMAC-SHA256 key and a 32-byte AES-256-CBC
 * key. A file holds 1 to TLS_TICKET_FILE_MAX_KEYS keys in one of two forms, each in
 * the layout of the server whose files it takes:
 *   binary  the keys one after the other, name / HMAC / AES, as nginx's
 *           ssl_session_ticket_key file (one such file is the one-key case);
 *   text    one base64 line per key (RFC 4648, padded), name / AES / HMAC, as
 *           HAProxy's tls-ticket-keys file; blanks around a line and empty lines are
 *           ignored.
 * A file with any byte that is neither printable ASCII nor a blank is binary; a random
 * key is, with certainty for any practical purpose. The first key encrypts new
 * tickets; every key decrypts. 48-byte keys (AES-128, which nginx and HAProxy also
 * take) are refused with a reason, as are two keys with the same name (the second
 * could never decrypt). Messages never contain key bytes. */
#ifndef FERRY_TLS_TICKET_FILE_H
#define FERRY_TLS_TICKET_FILE_H

#include <stdbool.h>
#include <stddef.h>

#include "core/err.h"

/* A key as bytes: a 16-byte name and the two 32-byte secrets (see the layouts). */
#define TLS_TICKET_KEY_BYTES 80
/* A rotation needs three at most (the key that encrypts, the next one handed out
 * ahead, the previous one); the rest is room for a slower scheme. */
#define TLS_TICKET_FILE_MAX_KEYS 8

struct tls_ticket_key {
    unsigned char name[16];
    unsigned char hmac[32];     /* HMAC-SHA256 */
    unsigned char aes[32];      /* AES-256-CBC */
};

/* The order of the secrets after the name: HMAC then AES in nginx's binary files, AES
 * then HMAC in HAProxy's base64 lines (its struct tls_sess_key_256) and in the keys a
 * binary upgrade hands over. */
enum tls_ticket_key_layout { TLS_KEY_NAME_HMAC_AES, TLS_KEY_NAME_AES_HMAC };

void tls_ticket_key_from_bytes(struct tls_ticket_key *key,
                               const unsigned char raw[TLS_TICKET_KEY_BYTES],
                               enum tls_ticket_key_layout layout);
void tls_ticket_key_to_bytes(const struct tls_ticket_key *key,
                             unsigned char raw[TLS_TICKET_KEY_BYTES],
                             enum tls_ticket_key_layout layout);

/* Parses a key file's contents into keys[] (in file order). Returns the number of
 * keys, 1..TLS_TICKET_FILE_MAX_KEYS, or -1 with the reason in *err ("line 3: not
 * base64"); keys[] may then hold parts of keys: clear it either way. */
int tls_ticket_file_parse(const unsigned char *data, size_t len,
                          struct tls_ticket_key keys[TLS_TICKET_FILE_MAX_KEYS],
                          struct err *err);

/* Why a key file with these permission bits (st_mode) is open to someone else than
 * ferry, or NULL when it is not. Reading by the file's group is fine when that group
 * is ferry's own (`group_is_ours`): that is how ferry is let read a file that root
 * owns (a `ferry` group, Kubernetes' fsGroup). */
const char *tls_ticket_file_exposure(unsigned mode, bool group_is_ours);

#endif
