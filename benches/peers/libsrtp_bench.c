/* libsrtp2 (Debian libsrtp2-dev) protect and unprotect rates for `keysim bench`: the same packets
 * as the Rust side (12-byte RTP header, PT 96, SSRC deadbeef, fresh sequence numbers, 1200 bytes
 * of 0xa5), AES_CM_128_HMAC_SHA1_80, master key 2b*16 || salt 17*14, one thread, timed on this
 * thread's CPU clock (CLOCK_THREAD_CPUTIME_ID), best of REPS runs of SECS seconds each.
 * Unprotect times batches of BATCH packets protected untimed just before, as the Rust side does.
 *
 *   cc -O2 -o libsrtp_bench libsrtp_bench.c -lsrtp2 && ./libsrtp_bench SECS REPS BATCH
 * prints {"version": ..., "protect_pps": ..., "unprotect_pps": ...}.
 */
#include <srtp2/srtp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HEADER 12
#define PAYLOAD 1200
#define ROOM (HEADER + PAYLOAD + SRTP_MAX_TRAILER_LEN)

static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void rtp(unsigned char *p, unsigned short seq) {
    memset(p, 0xa5, HEADER + PAYLOAD);
    memset(p, 0, HEADER);
    p[0] = 0x80;
    p[1] = 96;
    p[2] = (unsigned char)(seq >> 8);
    p[3] = (unsigned char)seq;
    p[8] = 0xde; p[9] = 0xad; p[10] = 0xbe; p[11] = 0xef;
}

static srtp_t session(int inbound, unsigned char *key) {
    srtp_policy_t p;
    memset(&p, 0, sizeof p);
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtp);
    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80(&p.rtcp);
    p.ssrc.type = inbound ? ssrc_any_inbound : ssrc_any_outbound;
    p.key = key;
    p.window_size = 128;
    p.next = NULL;
    srtp_t s;
    if (srtp_create(&s, &p) != srtp_err_status_ok) {
        fprintf(stderr, "srtp_create failed\n");
        exit(2);
    }
    return s;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s SECS REPS BATCH\n", argv[0]);
        return 2;
    }
    double secs = atof(argv[1]);
    int reps = atoi(argv[2]);
    int batch = atoi(argv[3]);
    if (!(secs > 0) || reps < 1 || batch < 1) return 2;
    if (srtp_init() != srtp_err_status_ok) return 2;
    unsigned char key[30];
    memset(key, 0x2b, 16);
    memset(key + 16, 0x17, 14);
    srtp_t tx = session(0, key), tx2 = session(0, key), rx = session(1, key);

    unsigned char buf[ROOM];
    unsigned char *pkts = malloc((size_t)batch * ROOM);
    int *lens = malloc(sizeof(int) * (size_t)batch);
    if (!pkts || !lens) return 2;
    unsigned short seq = 0, useq = 0;
    double best_p = 0, best_u = 0;
    for (int r = -1; r < reps; r++) { /* r = -1: warm-up */
        double run = r < 0 ? secs / 5 : secs;
        /* protect */
        rtp(buf, 0);
        long n = 0;
        double start = cpu_now(), t;
        do {
            for (int i = 0; i < 256; i++) {
                seq++;
                buf[2] = (unsigned char)(seq >> 8);
                buf[3] = (unsigned char)seq;
                int len = HEADER + PAYLOAD;
                if (srtp_protect(tx, buf, &len) != srtp_err_status_ok) {
                    fprintf(stderr, "srtp_protect failed\n");
                    return 1;
                }
            }
            n += 256;
            t = cpu_now() - start;
        } while (t < run);
        if (r >= 0 && n / t > best_p) best_p = n / t;
        /* unprotect */
        double timed = 0;
        n = 0;
        while (timed < run) {
            for (int i = 0; i < batch; i++) {
                unsigned char *p = pkts + (size_t)i * ROOM;
                rtp(p, ++useq);
                lens[i] = HEADER + PAYLOAD;
                if (srtp_protect(tx2, p, &lens[i]) != srtp_err_status_ok) return 1;
            }
            double s0 = cpu_now();
            for (int i = 0; i < batch; i++) {
                if (srtp_unprotect(rx, pkts + (size_t)i * ROOM, &lens[i]) != srtp_err_status_ok) {
                    fprintf(stderr, "srtp_unprotect failed\n");
                    return 1;
                }
            }
            timed += cpu_now() - s0;
            n += batch;
        }
        if (r >= 0 && n / timed > best_u) best_u = n / timed;
    }
    printf("{\"version\": \"%s\", \"protect_pps\": %.0f, \"unprotect_pps\": %.0f}\n",
           srtp_get_version_string(), best_p, best_u);
    return 0;
}
