/* Unit tests for asterisk/rtp: parsing and its errors, the jitter buffer, the sender. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "asterisk/rtp.h"

#define SSRC 0x11223344u

/* A PCMU packet whose payload bytes all equal (seq & 0x7F), so frames are recognisable. */
static size_t make(uint8_t *buf, uint16_t seq, uint32_t ssrc, uint8_t pt, size_t payload)
{
    rtp_write_header(buf, pt, 0, seq, (uint32_t)seq * 160, ssrc);
    memset(buf + RTP_HEADER_LEN, seq & 0x7F, payload);
    return RTP_HEADER_LEN + payload;
}

static rtp_jb_result_t push(rtp_jb_t *jb, uint16_t seq, uint32_t ssrc)
{
    uint8_t buf[RTP_PCMU_PACKET];
    rtp_packet_t p;
    size_t n = make(buf, seq, ssrc, RTP_PT_PCMU, RTP_PCMU_FRAME);
    assert_int_equal(rtp_parse(buf, n, &p), RTP_OK);
    return rtp_jb_push(jb, &p);
}

/* Pops one frame and checks its kind and, for audio, which packet it came from. */
static void pop_expect(rtp_jb_t *jb, rtp_jb_pop_t kind, int seq)
{
    uint8_t out[RTP_PCMU_FRAME];
    rtp_jb_pop_t r = rtp_jb_pop(jb, out);
    if (r != kind)
        fail_msg("pop gave %d, wanted %d (seq %d)", r, kind, seq);
    uint8_t want = kind == RTP_JB_AUDIO ? (uint8_t)(seq & 0x7F) : RTP_ULAW_SILENCE;
    for (size_t i = 0; i < RTP_PCMU_FRAME; i++)
        if (out[i] != want)
            fail_msg("byte %zu is 0x%02x, wanted 0x%02x (seq %d)", i, out[i], want, seq);
}

static void test_parse_plain(void **state)
{
    uint8_t b[RTP_PCMU_PACKET];
    rtp_packet_t p;
    rtp_write_header(b, 0, 1, 0xBEEF, 0xCAFEBABE, 0xDEADBEEF);
    memset(b + 12, 0x55, 160);
    assert_int_equal(b[0], 0x80);
    assert_int_equal(b[1], 0x80);
    assert_int_equal(rtp_parse(b, sizeof b, &p), RTP_OK);
    assert_int_equal(p.marker, 1);
    assert_int_equal(p.pt, 0);
    assert_int_equal(p.seq, 0xBEEF);
    assert_int_equal(p.ts, 0xCAFEBABE);
    assert_int_equal(p.ssrc, 0xDEADBEEF);
    assert_int_equal(p.csrc_count, 0);
    assert_null(p.csrc);
    assert_int_equal(p.has_ext, 0);
    assert_int_equal(p.padding, 0);
    assert_ptr_equal(p.payload, b + 12);
    assert_int_equal(p.payload_len, 160);

    /* header only, empty payload; a 7-bit payload type */
    rtp_write_header(b, 0xFF, 0, 1, 2, 3);
    assert_int_equal(rtp_parse(b, 12, &p), RTP_OK);
    assert_int_equal(p.pt, 127);
    assert_int_equal(p.marker, 0);
    assert_int_equal(p.payload_len, 0);
}

static void test_parse_csrc_ext_padding(void **state)
{
    uint8_t b[64];
    rtp_packet_t p;
    memset(b, 0, sizeof b);
    rtp_write_header(b, 8, 0, 7, 8, 9);
    b[0] |= 0x20 | 0x10 | 2; /* padding, extension, two CSRCs */
    b[12] = 0xAA, b[15] = 1; /* CSRC 0xAA000001 */
    b[19] = 2;
    b[20] = 0xBE, b[21] = 0xDE, b[22] = 0, b[23] = 2; /* two words of extension */
    memset(b + 24, 0xEE, 8);
    memcpy(b + 32, "hello", 5);
    b[37] = 0, b[38] = 0, b[39] = 3; /* 3 bytes of padding */
    assert_int_equal(rtp_parse(b, 40, &p), RTP_OK);
    assert_int_equal(p.pt, 8);
    assert_int_equal(p.csrc_count, 2);
    assert_ptr_equal(p.csrc, b + 12);
    assert_int_equal(p.csrc[0], 0xAA);
    assert_int_equal(p.has_ext, 1);
    assert_int_equal(p.ext_profile, 0xBEDE);
    assert_ptr_equal(p.ext, b + 24);
    assert_int_equal(p.ext_len, 8);
    assert_int_equal(p.padding, 3);
    assert_ptr_equal(p.payload, b + 32);
    assert_int_equal(p.payload_len, 5);

    /* an empty extension and padding that takes the whole payload */
    rtp_write_header(b, 0, 0, 1, 1, 1);
    b[0] |= 0x30;
    b[12] = 0x10, b[13] = 0, b[14] = 0, b[15] = 0;
    b[16] = 0, b[17] = 0, b[18] = 0, b[19] = 4;
    assert_int_equal(rtp_parse(b, 20, &p), RTP_OK);
    assert_int_equal(p.has_ext, 1);
    assert_int_equal(p.ext_len, 0);
    assert_non_null(p.ext);
    assert_int_equal(p.payload_len, 0);
    assert_int_equal(p.padding, 4);

    /* fifteen CSRCs fill the list exactly */
    uint8_t c[12 + 60];
    memset(c, 0, sizeof c);
    rtp_write_header(c, 0, 0, 1, 1, 1);
    c[0] |= 15;
    assert_int_equal(rtp_parse(c, sizeof c, &p), RTP_OK);
    assert_int_equal(p.csrc_count, 15);
    assert_int_equal(p.payload_len, 0);
}

static int parse_err(const uint8_t *b, size_t len)
{
    rtp_packet_t p;
    memset(&p, 0xA5, sizeof p);
    int err = rtp_parse(b, len, &p);
    assert_true(err < 0);
    /* nothing useful is left behind on error */
    assert_null(p.payload);
    assert_int_equal(p.payload_len, 0);
    return err;
}

static void test_parse_errors(void **state)
{
    uint8_t b[64];
    memset(b, 0, sizeof b);
    rtp_write_header(b, 0, 0, 1, 1, 1);

    assert_int_equal(parse_err(b, 0), RTP_ESHORT);
    assert_int_equal(parse_err(b, 11), RTP_ESHORT);

    for (uint8_t v = 0; v < 4; v++) {
        if (v == 2)
            continue;
        b[0] = (uint8_t)(v << 6);
        assert_int_equal(parse_err(b, 20), RTP_EVERSION);
    }

    b[0] = 0x80 | 3; /* three CSRCs need 24 bytes */
    assert_int_equal(parse_err(b, 23), RTP_ECSRC);
    b[0] = 0x80 | 15;
    assert_int_equal(parse_err(b, 64), RTP_ECSRC);

    b[0] = 0x90; /* extension header missing */
    assert_int_equal(parse_err(b, 15), RTP_EEXT);
    b[12] = 0xBE, b[13] = 0xDE, b[14] = 0, b[15] = 3; /* 12 bytes of data announced, 11 present */
    assert_int_equal(parse_err(b, 27), RTP_EEXT);
    b[14] = 0xFF, b[15] = 0xFF;
    assert_int_equal(parse_err(b, 64), RTP_EEXT);
    b[0] = 0x91; /* the extension after one CSRC, which shifts it past the end */
    b[14] = 0, b[15] = 0;
    assert_int_equal(parse_err(b, 19), RTP_EEXT);

    b[0] = 0xA0; /* padding count 0 */
    b[19] = 0;
    assert_int_equal(parse_err(b, 20), RTP_EPADDING);
    b[19] = 9; /* 8 bytes after the header: 9 would eat into it */
    assert_int_equal(parse_err(b, 20), RTP_EPADDING);
    b[11] = 1; /* header only: the last header byte read as a count */
    assert_int_equal(parse_err(b, 12), RTP_EPADDING);
    b[0] = 0xB0; /* padding may not eat the extension either */
    b[12] = 0, b[13] = 0, b[14] = 0, b[15] = 1, b[19] = 1;
    assert_int_equal(parse_err(b, 20), RTP_EPADDING);

    rtp_write_header(b, 0, 0, 1, 1, 1);
    for (unsigned t = 192; t <= 223; t++) {
        b[1] = (uint8_t)t;
        assert_int_equal(parse_err(b, 20), RTP_ERTCP);
    }
    b[1] = 224; /* PT 96 with the marker: dynamic RTP */
    rtp_packet_t p;
    assert_int_equal(rtp_parse(b, 20, &p), RTP_OK);
    assert_int_equal(p.pt, 96);
}

static void test_strerror(void **state)
{
    const int codes[] = {RTP_OK, RTP_ESHORT, RTP_EVERSION, RTP_ECSRC, RTP_EEXT, RTP_EPADDING, RTP_ERTCP, RTP_EINVAL};
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(rtp_strerror(codes[i]), rtp_strerror(codes[j]));
    assert_non_null(rtp_strerror(-1000));
}

static void test_jb_in_order(void **state)
{
    rtp_jb_t jb;
    assert_int_equal(rtp_jb_init(&jb, RTP_JB_SLOTS), RTP_EINVAL);
    assert_int_equal(rtp_jb_init(&jb, 2), RTP_OK);
    pop_expect(&jb, RTP_JB_IDLE, 0); /* nothing yet: idle, not lost */
    assert_int_equal(rtp_jb_depth(&jb), 0);

    assert_int_equal(push(&jb, 100, SSRC), RTP_JB_ACCEPTED);
    pop_expect(&jb, RTP_JB_IDLE, 0); /* two frames of playout delay */
    assert_int_equal(push(&jb, 101, SSRC), RTP_JB_ACCEPTED);
    pop_expect(&jb, RTP_JB_IDLE, 0);
    assert_int_equal(push(&jb, 102, SSRC), RTP_JB_ACCEPTED);
    assert_int_equal(rtp_jb_depth(&jb), 3);
    for (uint16_t s = 103; s < 300; s++) {
        pop_expect(&jb, RTP_JB_AUDIO, s - 3);
        assert_int_equal(push(&jb, s, SSRC), RTP_JB_ACCEPTED);
    }
    assert_int_equal(jb.stats.received, 200);
    assert_int_equal(jb.stats.lost, 0);
    assert_int_equal(jb.stats.reordered, 0);
    assert_int_equal(jb.stats.overflow, 0);
}

static void test_jb_wrap(void **state)
{
    rtp_jb_t jb;
    rtp_jb_init(&jb, 1);
    push(&jb, 65533, SSRC);
    pop_expect(&jb, RTP_JB_IDLE, 0);
    for (uint32_t s = 65534; s < 65536 + 20; s++) {
        assert_int_equal(push(&jb, (uint16_t)s, SSRC), RTP_JB_ACCEPTED);
        pop_expect(&jb, RTP_JB_AUDIO, (int)((s - 1) & 0xFFFF));
    }
    /* reordered across the wrap: 1 before 65535 */
    rtp_jb_init(&jb, 2);
    push(&jb, 65534, SSRC);
    push(&jb, 0, SSRC);
    push(&jb, 65535, SSRC);
    push(&jb, 1, SSRC);
    pop_expect(&jb, RTP_JB_IDLE, 0);
    pop_expect(&jb, RTP_JB_IDLE, 0);
    pop_expect(&jb, RTP_JB_AUDIO, 65534);
    pop_expect(&jb, RTP_JB_AUDIO, 65535);
    pop_expect(&jb, RTP_JB_AUDIO, 0);
    pop_expect(&jb, RTP_JB_AUDIO, 1);
    assert_int_equal(jb.stats.reordered, 1);
    assert_int_equal(jb.stats.late, 0);
}

static void test_jb_reorder(void **state)
{
    rtp_jb_t jb;
    rtp_jb_init(&jb, 2);
    push(&jb, 10, SSRC);
    pop_expect(&jb, RTP_JB_IDLE, 0);
    push(&jb, 12, SSRC); /* 11 is late but within the delay */
    pop_expect(&jb, RTP_JB_IDLE, 0);
    push(&jb, 11, SSRC);
    push(&jb, 13, SSRC);
    pop_expect(&jb, RTP_JB_AUDIO, 10);
    push(&jb, 15, SSRC);
    push(&jb, 14, SSRC);
    pop_expect(&jb, RTP_JB_AUDIO, 11);
    pop_expect(&jb, RTP_JB_AUDIO, 12);
    pop_expect(&jb, RTP_JB_AUDIO, 13);
    pop_expect(&jb, RTP_JB_AUDIO, 14);
    pop_expect(&jb, RTP_JB_AUDIO, 15);
    assert_int_equal(jb.stats.reordered, 2);
    assert_int_equal(jb.stats.received, 6);

    /* the first packet to arrive is not the first sent: the start moves back */
    rtp_jb_init(&jb, 2);
    push(&jb, 51, SSRC);
    push(&jb, 50, SSRC);
    pop_expect(&jb, RTP_JB_IDLE, 0);
    pop_expect(&jb, RTP_JB_IDLE, 0);
    pop_expect(&jb, RTP_JB_AUDIO, 50);
    pop_expect(&jb, RTP_JB_AUDIO, 51);
    assert_int_equal(jb.stats.reordered, 1);
    assert_int_equal(jb.stats.late, 0);
}

static void test_jb_duplicate_and_late(void **state)
{
    rtp_jb_t jb;
    rtp_jb_init(&jb, 2);
    push(&jb, 1000, SSRC);
    assert_int_equal(push(&jb, 1000, SSRC), RTP_JB_DUPLICATE);
    push(&jb, 1001, SSRC);
    push(&jb, 1002, SSRC);
    assert_int_equal(push(&jb, 1001, SSRC), RTP_JB_DUPLICATE);
    pop_expect(&jb, RTP_JB_IDLE, 0);
    pop_expect(&jb, RTP_JB_IDLE, 0);
    pop_expect(&jb, RTP_JB_AUDIO, 1000);
    pop_expect(&jb, RTP_JB_AUDIO, 1001);
    assert_int_equal(push(&jb, 1000, SSRC), RTP_JB_LATE); /* played already */
    assert_int_equal(push(&jb, 1001, SSRC), RTP_JB_LATE);
    assert_int_equal(push(&jb, 1002 - RTP_JB_MAX_MISORDER, SSRC), RTP_JB_LATE);
    /* one more behind is a jump, held as suspect */
    assert_int_equal(push(&jb, 1002 - 1 - RTP_JB_MAX_MISORDER, SSRC), RTP_JB_JUMP);
    assert_int_equal(jb.stats.duplicates, 2);
    assert_int_equal(jb.stats.late, 3);
    assert_int_equal(jb.stats.bad, 1);
    pop_expect(&jb, RTP_JB_AUDIO, 1002);
}

static void test_jb_loss(void **state)
{
    rtp_jb_t jb;
    rtp_jb_init(&jb, 0);
    push(&jb, 5, SSRC);
    pop_expect(&jb, RTP_JB_AUDIO, 5);
    push(&jb, 8, SSRC); /* 6 and 7 never come */
    pop_expect(&jb, RTP_JB_LOST, 6);
    pop_expect(&jb, RTP_JB_LOST, 7);
    pop_expect(&jb, RTP_JB_AUDIO, 8);
    assert_int_equal(push(&jb, 7, SSRC), RTP_JB_LATE);
    assert_int_equal(jb.stats.lost, 2);
    assert_int_equal(jb.stats.late, 1);

    /* the sender pauses: a few frames count as lost, then pops go idle */
    for (int i = 0; i < RTP_JB_SLOTS; i++)
        pop_expect(&jb, RTP_JB_LOST, 9 + i);
    for (int i = 0; i < 50; i++)
        pop_expect(&jb, RTP_JB_IDLE, 0);
    assert_int_equal(jb.stats.lost, 2 + RTP_JB_SLOTS);
    /* it resumes where it left off: re-anchored, not late */
    assert_int_equal(push(&jb, 9, SSRC), RTP_JB_ACCEPTED);
    pop_expect(&jb, RTP_JB_AUDIO, 9);
    assert_int_equal(jb.stats.restarts, 0);
}

static void test_jb_overflow(void **state)
{
    rtp_jb_t jb;
    rtp_jb_init(&jb, 2);
    /* our timer stalled: 12 frames arrive before any pop; the 4 oldest are skipped */
    for (uint16_t s = 0; s < 12; s++)
        assert_int_equal(push(&jb, s, SSRC), RTP_JB_ACCEPTED);
    assert_int_equal(jb.stats.overflow, 4);
    assert_int_equal(rtp_jb_depth(&jb), RTP_JB_SLOTS);
    pop_expect(&jb, RTP_JB_IDLE, 0);
    pop_expect(&jb, RTP_JB_IDLE, 0);
    /* too much buffered for 1 s: one frame at a time is skipped until back to delay + 1 */
    uint16_t s = 12;
    for (int i = 0; i < 300; i++) {
        uint8_t out[RTP_PCMU_FRAME];
        assert_int_equal(rtp_jb_pop(&jb, out), RTP_JB_AUDIO);
        push(&jb, s++, SSRC);
    }
    assert_int_equal(rtp_jb_depth(&jb), 3);
    assert_int_equal(jb.stats.overflow, 4 + RTP_JB_SLOTS - 3);
    assert_int_equal(jb.stats.lost, 0);

    /* a forward jump within the dropout limit: the gap is lost, the stream goes on */
    rtp_jb_init(&jb, 0);
    push(&jb, 100, SSRC);
    pop_expect(&jb, RTP_JB_AUDIO, 100);
    assert_int_equal(push(&jb, 600, SSRC), RTP_JB_ACCEPTED);
    assert_int_equal(jb.stats.lost, 600 - 101 - (RTP_JB_SLOTS - 1));
    for (int i = 0; i < RTP_JB_SLOTS - 1; i++)
        pop_expect(&jb, RTP_JB_LOST, 0);
    pop_expect(&jb, RTP_JB_AUDIO, 600);
}

static void test_jb_jump(void **state)
{
    rtp_jb_t jb;
    rtp_jb_init(&jb, 0);
    push(&jb, 100, SSRC);
    pop_expect(&jb, RTP_JB_AUDIO, 100);
    /* a stray packet far ahead is held as suspect; the stream goes on */
    assert_int_equal(push(&jb, 40000, SSRC), RTP_JB_JUMP);
    assert_int_equal(push(&jb, 101, SSRC), RTP_JB_ACCEPTED);
    pop_expect(&jb, RTP_JB_AUDIO, 101);
    /* a jump confirmed by the next packet restarts there */
    assert_int_equal(push(&jb, 30000, SSRC), RTP_JB_JUMP);
    assert_int_equal(push(&jb, 30001, SSRC), RTP_JB_ACCEPTED);
    pop_expect(&jb, RTP_JB_AUDIO, 30001);
    assert_int_equal(push(&jb, 30002, SSRC), RTP_JB_ACCEPTED);
    pop_expect(&jb, RTP_JB_AUDIO, 30002);
    assert_int_equal(jb.stats.bad, 2);
    assert_int_equal(jb.stats.restarts, 1);
}

static void test_jb_ssrc_change(void **state)
{
    rtp_jb_t jb;
    rtp_jb_init(&jb, 1);
    push(&jb, 500, SSRC);
    push(&jb, 501, SSRC);
    pop_expect(&jb, RTP_JB_IDLE, 0);
    pop_expect(&jb, RTP_JB_AUDIO, 500);
    /* a new source: what was buffered is dropped and playout restarts with the delay */
    assert_int_equal(push(&jb, 7, 0x55667788), RTP_JB_ACCEPTED);
    assert_int_equal(rtp_jb_depth(&jb), 1);
    pop_expect(&jb, RTP_JB_IDLE, 0);
    pop_expect(&jb, RTP_JB_AUDIO, 7);
    assert_int_equal(push(&jb, 502, SSRC), RTP_JB_ACCEPTED); /* and the old one back */
    assert_int_equal(jb.stats.restarts, 2);
    assert_int_equal(jb.stats.received, 4);
}

static void test_jb_refused(void **state)
{
    rtp_jb_t jb;
    uint8_t buf[RTP_PCMU_PACKET + 160];
    rtp_packet_t p;
    rtp_jb_init(&jb, 2);
    rtp_parse(buf, make(buf, 1, SSRC, 8, 160), &p); /* PCMA */
    assert_int_equal(rtp_jb_push(&jb, &p), RTP_JB_WRONG_PT);
    rtp_parse(buf, make(buf, 1, SSRC, 0, 80), &p); /* 10 ms */
    assert_int_equal(rtp_jb_push(&jb, &p), RTP_JB_WRONG_SIZE);
    rtp_parse(buf, make(buf, 1, SSRC, 0, 320), &p); /* 40 ms */
    assert_int_equal(rtp_jb_push(&jb, &p), RTP_JB_WRONG_SIZE);
    assert_int_equal(jb.stats.wrong_pt, 1);
    assert_int_equal(jb.stats.bad, 2);
    assert_int_equal(jb.stats.received, 0);
    pop_expect(&jb, RTP_JB_IDLE, 0); /* none of them started the stream */
    assert_int_equal(rtp_jb_depth(&jb), 0);
}

static void test_tx(void **state)
{
    rtp_tx_t tx;
    uint8_t ulaw[RTP_PCMU_FRAME], pkt[RTP_PCMU_PACKET];
    rtp_packet_t p;
    memset(ulaw, 0x2A, sizeof ulaw);
    rtp_tx_init(&tx, 0xA1B2C3D4, 65534, 0xFFFFFF00u);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rtp_tx_packet(&tx, ulaw, pkt), RTP_PCMU_PACKET);
        assert_int_equal(rtp_parse(pkt, sizeof pkt, &p), RTP_OK);
        assert_int_equal(p.pt, RTP_PT_PCMU);
        assert_int_equal(p.marker, i == 0);
        assert_int_equal(p.ssrc, 0xA1B2C3D4);
        assert_int_equal(p.seq, (uint16_t)(65534 + i));             /* wraps to 0 */
        assert_int_equal(p.ts, (uint32_t)(0xFFFFFF00u + 160u * i)); /* wraps too */
        assert_int_equal(p.payload_len, RTP_PCMU_FRAME);
        assert_memory_equal(p.payload, ulaw, RTP_PCMU_FRAME);
    }
    uint8_t hdr[RTP_HEADER_LEN];
    rtp_tx_header(&tx, hdr);
    assert_int_equal(rtp_parse(hdr, sizeof hdr, &p), RTP_OK);
    assert_int_equal(p.seq, 2);
    assert_int_equal(p.ts, (uint32_t)(0xFFFFFF00u + 640));

    /* what the sender makes, the buffer plays */
    rtp_jb_t jb;
    rtp_jb_init(&jb, 0);
    rtp_tx_packet(&tx, ulaw, pkt);
    rtp_parse(pkt, sizeof pkt, &p);
    assert_int_equal(rtp_jb_push(&jb, &p), RTP_JB_ACCEPTED);
    uint8_t out[RTP_PCMU_FRAME];
    assert_int_equal(rtp_jb_pop(&jb, out), RTP_JB_AUDIO);
    assert_memory_equal(out, ulaw, RTP_PCMU_FRAME);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_plain),  cmocka_unit_test(test_parse_csrc_ext_padding),
        cmocka_unit_test(test_parse_errors), cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_jb_in_order),  cmocka_unit_test(test_jb_wrap),
        cmocka_unit_test(test_jb_reorder),   cmocka_unit_test(test_jb_duplicate_and_late),
        cmocka_unit_test(test_jb_loss),      cmocka_unit_test(test_jb_overflow),
        cmocka_unit_test(test_jb_jump),      cmocka_unit_test(test_jb_ssrc_change),
        cmocka_unit_test(test_jb_refused),   cmocka_unit_test(test_tx),
    };
    return cmocka_run_group_tests_name("rtp", tests, NULL, NULL);
}
