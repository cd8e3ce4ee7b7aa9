// SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note OR MIT
/*
 * verbs_peer: a plain userspace RDMA peer (librdmacm + libibverbs, nothing
 * of dmaplane) for the interop tests. It connects to, or listens for, one
 * RC connection through rdma_cm, registers one buffer with ibv_reg_mr()
 * (virtual-address based) or ibv_reg_mr_iova() at iova 0 (zero-based),
 * and then does what its standard input tells it, one command a line, one
 * answer a line on standard output:
 *
 *   fill OFF LEN SEED       bytes [OFF, OFF+LEN) := pattern(SEED)    OK
 *   check OFF LEN SEED      compare with pattern(SEED)   OK | BAD I GOT WANT
 *   recv OFF LEN ID         post a receive (LEN 0: no buffer)       OK | ERR e
 *   send OFF LEN ID         post a signalled SEND                   OK | ERR e
 *   write OFF LEN RKEY ADDR ID           RDMA WRITE to (RKEY, ADDR)
 *   write_imm OFF LEN RKEY ADDR IMM ID   RDMA WRITE with immediate IMM
 *   read OFF LEN RKEY ADDR ID            RDMA READ from (RKEY, ADDR)
 *   poll                    WC id=I status=S opcode=O len=L imm=M | TIMEOUT
 *   cm                      CM <event number> | TIMEOUT   (next CM event)
 *   dereg                   ibv_dereg_mr() of the buffer            OK | ERR e
 *   quit                    BYE, then disconnect and exit 0
 *
 * pattern(SEED) at byte i of a range is (i * 131 + SEED) & 0xff.
 *
 * Usage: verbs_peer listen IP PORT | connect IP PORT
 *                   [--size N] [--zero-based] [--private TEXT]
 * A listener prints "LISTENING PORT" once bound (PORT 0 picks one). Once
 * connected it prints "CONNECTED rkey=R addr=A len=N private=HEX": what a
 * dmaplane peer names the buffer by (addr: the address of its byte 0 in
 * work requests) and the private data the other side sent (as rdma_cm
 * delivered it, transport padding included). A connector that is
 * rejected prints "REJECTED status=S" and exits 2. Every wait is bounded
 * (10 s); anything unexpected exits non-zero with a line on stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <infiniband/verbs.h>
#include <rdma/rdma_cma.h>

#define WAIT_MS 10000

struct peer {
	struct rdma_event_channel *ec;
	struct rdma_cm_id *listen_id;
	struct rdma_cm_id *id;
	struct ibv_pd *pd;
	struct ibv_cq *cq;
	struct ibv_mr *mr;
	unsigned char *buf;
	size_t size;
	int zero_based;
	const char *private_text;
	unsigned char peer_private[256];
	unsigned int peer_private_len;
};

static void die(const char *what)
{
	fprintf(stderr, "verbs_peer: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* The next CM event within WAIT_MS (acked by the caller), or NULL. */
static struct rdma_cm_event *next_event(struct peer *p)
{
	struct pollfd pfd = { .fd = p->ec->fd, .events = POLLIN };
	struct rdma_cm_event *ev = NULL;

	if (poll(&pfd, 1, WAIT_MS) != 1 || rdma_get_cm_event(p->ec, &ev))
		return NULL;
	return ev;
}

/* The next CM event must be @type; its private data is kept. */
static void expect_event(struct peer *p, enum rdma_cm_event_type type)
{
	struct rdma_cm_event *ev = next_event(p);
	unsigned int len;

	if (!ev) {
		fprintf(stderr, "verbs_peer: no CM event (waiting for %s)\n",
			rdma_event_str(type));
		exit(1);
	}
	if (ev->event == RDMA_CM_EVENT_REJECTED && type != ev->event) {
		printf("REJECTED status=%d\n", ev->status);
		rdma_ack_cm_event(ev);
		exit(2);
	}
	if (ev->event != type) {
		fprintf(stderr, "verbs_peer: %s instead of %s\n",
			rdma_event_str(ev->event), rdma_event_str(type));
		exit(1);
	}
	len = ev->param.conn.private_data ? ev->param.conn.private_data_len : 0;
	if (type == RDMA_CM_EVENT_ESTABLISHED && !len) {
		/* The passive side's ESTABLISHED carries none: keep the request's. */
	} else {
		if (len > sizeof(p->peer_private))
			len = sizeof(p->peer_private);
		memcpy(p->peer_private, ev->param.conn.private_data, len);
		p->peer_private_len = len;
	}
	if (type == RDMA_CM_EVENT_CONNECT_REQUEST)
		p->id = ev->id;
	rdma_ack_cm_event(ev);
}

/* PD, CQ, QP and the registered buffer on @p->id's device. */
static void setup_verbs(struct peer *p)
{
	const int access = IBV_ACCESS_LOCAL_WRITE | IBV_ACCESS_REMOTE_WRITE |
			   IBV_ACCESS_REMOTE_READ;
	struct ibv_qp_init_attr qa;

	p->pd = ibv_alloc_pd(p->id->verbs);
	if (!p->pd)
		die("ibv_alloc_pd");
	p->cq = ibv_create_cq(p->id->verbs, 256, NULL, NULL, 0);
	if (!p->cq)
		die("ibv_create_cq");
	memset(&qa, 0, sizeof(qa));
	qa.send_cq = p->cq;
	qa.recv_cq = p->cq;
	qa.qp_type = IBV_QPT_RC;
	qa.cap.max_send_wr = 64;
	qa.cap.max_recv_wr = 64;
	qa.cap.max_send_sge = 1;
	qa.cap.max_recv_sge = 1;
	if (rdma_create_qp(p->id, p->pd, &qa))
		die("rdma_create_qp");
	if (posix_memalign((void **)&p->buf, 4096, p->size))
		die("posix_memalign");
	memset(p->buf, 0, p->size);
	p->mr = p->zero_based ?
		ibv_reg_mr_iova(p->pd, p->buf, p->size, 0, access) :
		ibv_reg_mr(p->pd, p->buf, p->size, access);
	if (!p->mr)
		die("ibv_reg_mr");
}

static void conn_param(struct peer *p, struct rdma_conn_param *cp)
{
	memset(cp, 0, sizeof(*cp));
	cp->responder_resources = 4;
	cp->initiator_depth = 4;
	cp->retry_count = 7;
	cp->rnr_retry_count = 7;
	if (p->private_text) {
		cp->private_data = p->private_text;
		cp->private_data_len = (uint8_t)(strlen(p->private_text) + 1);
	}
}

/*
 * The address of byte @off of the buffer in this side's own work requests:
 * a zero-based registration is addressed from its iova (0) on, locally too.
 */
static uint64_t local_addr(const struct peer *p, uint64_t off)
{
	return (p->zero_based ? 0 : (uint64_t)(uintptr_t)p->buf) + off;
}

static void print_connected(struct peer *p)
{
	unsigned int i;

	printf("CONNECTED rkey=%" PRIu32 " addr=%" PRIu64 " len=%zu private=",
	       p->mr->rkey, local_addr(p, 0), p->size);
	for (i = 0; i < p->peer_private_len; i++)
		printf("%02x", p->peer_private[i]);
	printf("\n");
}

static int resolve(const char *ip, const char *port, struct sockaddr_in *sin)
{
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_port = htons((uint16_t)atoi(port));
	return inet_pton(AF_INET, ip, &sin->sin_addr) == 1 ? 0 : -1;
}

static void do_listen(struct peer *p, const char *ip, const char *port)
{
	struct rdma_conn_param cp;
	struct sockaddr_in sin;

	if (resolve(ip, port, &sin))
		die("address");
	if (rdma_create_id(p->ec, &p->listen_id, NULL, RDMA_PS_TCP))
		die("rdma_create_id");
	if (rdma_bind_addr(p->listen_id, (struct sockaddr *)&sin))
		die("rdma_bind_addr");
	if (rdma_listen(p->listen_id, 1))
		die("rdma_listen");
	printf("LISTENING %u\n", ntohs(rdma_get_src_port(p->listen_id)));
	expect_event(p, RDMA_CM_EVENT_CONNECT_REQUEST);
	setup_verbs(p);
	conn_param(p, &cp);
	if (rdma_accept(p->id, &cp))
		die("rdma_accept");
	expect_event(p, RDMA_CM_EVENT_ESTABLISHED);
}

static void do_connect(struct peer *p, const char *ip, const char *port)
{
	struct rdma_conn_param cp;
	struct sockaddr_in sin;

	if (resolve(ip, port, &sin))
		die("address");
	if (rdma_create_id(p->ec, &p->id, NULL, RDMA_PS_TCP))
		die("rdma_create_id");
	if (rdma_resolve_addr(p->id, NULL, (struct sockaddr *)&sin, WAIT_MS))
		die("rdma_resolve_addr");
	expect_event(p, RDMA_CM_EVENT_ADDR_RESOLVED);
	if (rdma_resolve_route(p->id, WAIT_MS))
		die("rdma_resolve_route");
	expect_event(p, RDMA_CM_EVENT_ROUTE_RESOLVED);
	setup_verbs(p);
	conn_param(p, &cp);
	if (rdma_connect(p->id, &cp))
		die("rdma_connect");
	expect_event(p, RDMA_CM_EVENT_ESTABLISHED);
}

static unsigned char pattern(uint64_t i, unsigned int seed)
{
	return (unsigned char)((i * 131 + seed) & 0xff);
}

/* Whether [off, off + len) lies in the buffer. */
static int in_buf(struct peer *p, uint64_t off, uint64_t len)
{
	return off <= p->size && len <= p->size - off;
}

static void post_rdma(struct peer *p, enum ibv_wr_opcode opcode, uint64_t off,
		      uint64_t len, uint32_t rkey, uint64_t addr, uint32_t imm,
		      uint64_t id)
{
	struct ibv_sge sge = {
		.addr = local_addr(p, off),
		.length = (uint32_t)len,
		.lkey = p->mr ? p->mr->lkey : 0,
	};
	struct ibv_send_wr wr, *bad = NULL;
	int err;

	memset(&wr, 0, sizeof(wr));
	wr.wr_id = id;
	wr.opcode = opcode;
	wr.sg_list = len ? &sge : NULL;
	wr.num_sge = len ? 1 : 0;
	wr.send_flags = IBV_SEND_SIGNALED;
	wr.wr.rdma.rkey = rkey;
	wr.wr.rdma.remote_addr = addr;
	wr.imm_data = htonl(imm);
	err = in_buf(p, off, len) ? ibv_post_send(p->id->qp, &wr, &bad) : EINVAL;
	if (err)
		printf("ERR %d\n", err);
	else
		printf("OK\n");
}

static void poll_one(struct peer *p)
{
	struct timespec start, now;
	struct ibv_wc wc;
	int n;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		n = ibv_poll_cq(p->cq, 1, &wc);
		if (n < 0) {
			printf("ERR %d\n", n);
			return;
		}
		if (n == 1)
			break;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) * 1000 +
		    (now.tv_nsec - start.tv_nsec) / 1000000 > WAIT_MS) {
			printf("TIMEOUT\n");
			return;
		}
		/* A test peer: a short sleep keeps the guest's CPUs for rxe. */
		{
			struct timespec ts = { 0, 200000 };

			nanosleep(&ts, NULL);
		}
	}
	printf("WC id=%" PRIu64 " status=%d opcode=%d len=%u imm=%" PRIu32 "\n",
	       (uint64_t)wc.wr_id, (int)wc.status, (int)wc.opcode, wc.byte_len,
	       (wc.wc_flags & IBV_WC_WITH_IMM) ? ntohl(wc.imm_data) : 0);
}

static void serve(struct peer *p)
{
	char line[512], cmd[32];
	unsigned long long a, b, c, d, e, f;
	struct rdma_cm_event *ev;

	while (fgets(line, sizeof(line), stdin)) {
		a = b = c = d = e = f = 0;
		if (sscanf(line, "%31s %llu %llu %llu %llu %llu %llu", cmd, &a, &b,
			   &c, &d, &e, &f) < 1)
			continue;
		if (!strcmp(cmd, "fill") || !strcmp(cmd, "check")) {
			uint64_t i, bad = UINT64_MAX;

			if (!in_buf(p, a, b)) {
				printf("ERR %d\n", EINVAL);
				continue;
			}
			for (i = 0; i < b; i++) {
				if (cmd[0] == 'f')
					p->buf[a + i] = pattern(i, (unsigned int)c);
				else if (p->buf[a + i] != pattern(i, (unsigned int)c) &&
					 bad == UINT64_MAX)
					bad = i;
			}
			if (bad == UINT64_MAX)
				printf("OK\n");
			else
				printf("BAD %" PRIu64 " %u %u\n", bad, p->buf[a + bad],
				       pattern(bad, (unsigned int)c));
		} else if (!strcmp(cmd, "recv")) {
			struct ibv_sge sge = {
				.addr = local_addr(p, a),
				.length = (uint32_t)b,
				.lkey = p->mr ? p->mr->lkey : 0,
			};
			struct ibv_recv_wr wr, *bad = NULL;
			int err;

			memset(&wr, 0, sizeof(wr));
			wr.wr_id = c;
			wr.sg_list = b ? &sge : NULL;
			wr.num_sge = b ? 1 : 0;
			err = in_buf(p, a, b) ? ibv_post_recv(p->id->qp, &wr, &bad) : EINVAL;
			if (err)
				printf("ERR %d\n", err);
			else
				printf("OK\n");
		} else if (!strcmp(cmd, "send")) {
			post_rdma(p, IBV_WR_SEND, a, b, 0, 0, 0, c);
		} else if (!strcmp(cmd, "write")) {
			post_rdma(p, IBV_WR_RDMA_WRITE, a, b, (uint32_t)c, d, 0, e);
		} else if (!strcmp(cmd, "write_imm")) {
			post_rdma(p, IBV_WR_RDMA_WRITE_WITH_IMM, a, b, (uint32_t)c, d,
				  (uint32_t)e, f);
		} else if (!strcmp(cmd, "read")) {
			post_rdma(p, IBV_WR_RDMA_READ, a, b, (uint32_t)c, d, 0, e);
		} else if (!strcmp(cmd, "poll")) {
			poll_one(p);
		} else if (!strcmp(cmd, "cm")) {
			ev = next_event(p);
			if (!ev) {
				printf("TIMEOUT\n");
			} else {
				printf("CM %d\n", (int)ev->event);
				rdma_ack_cm_event(ev);
			}
		} else if (!strcmp(cmd, "dereg")) {
			int err = p->mr ? ibv_dereg_mr(p->mr) : EINVAL;

			if (!err)
				p->mr = NULL;
			printf(err ? "ERR %d\n" : "OK\n", err);
		} else if (!strcmp(cmd, "quit")) {
			printf("BYE\n");
			return;
		} else {
			printf("ERR %d\n", EINVAL);
		}
	}
}

int main(int argc, char **argv)
{
	struct peer p;
	int i;

	memset(&p, 0, sizeof(p));
	p.size = 65536;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 4 || (strcmp(argv[1], "listen") && strcmp(argv[1], "connect"))) {
		fprintf(stderr, "usage: verbs_peer listen|connect IP PORT [--size N] "
				"[--zero-based] [--private TEXT]\n");
		return 64;
	}
	for (i = 4; i < argc; i++) {
		if (!strcmp(argv[i], "--size") && i + 1 < argc)
			p.size = strtoull(argv[++i], NULL, 0);
		else if (!strcmp(argv[i], "--zero-based"))
			p.zero_based = 1;
		else if (!strcmp(argv[i], "--private") && i + 1 < argc)
			p.private_text = argv[++i];
		else
			return 64;
	}
	if (!p.size || (p.private_text && strlen(p.private_text) >= 56))
		return 64;
	p.ec = rdma_create_event_channel();
	if (!p.ec)
		die("rdma_create_event_channel");
	if (argv[1][0] == 'l')
		do_listen(&p, argv[2], argv[3]);
	else
		do_connect(&p, argv[2], argv[3]);
	print_connected(&p);
	serve(&p);

	rdma_disconnect(p.id);
	rdma_destroy_qp(p.id);
	if (p.mr)
		ibv_dereg_mr(p.mr);
	ibv_destroy_cq(p.cq);
	ibv_dealloc_pd(p.pd);
	rdma_destroy_id(p.id);
	if (p.listen_id)
		rdma_destroy_id(p.listen_id);
	rdma_destroy_event_channel(p.ec);
	free(p.buf);
	return 0;
}
