/* One connection of the socket server: framing with partial reads and
 * writes, one request at a time handed to the handler (so answers stay in
 * order), at most REQUESTS_PER_TURN per loop turn, the uid's share of
 * unsent answers, and closing. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/kt_json.h"
#include "common/log.h"
#include "server_int.h"

time_t kt_server_mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

void kt_conn_ready_add(struct kt_server *s, struct kt_conn *c)
{
	if (c->ready || c->closed)
		return;
	c->ready = true;
	c->ready_next = s->ready;
	s->ready = c;
}

/* Takes a connection off the loop and the list at once; the memory stays
 * until the end of the loop turn, since the ready list being walked may
 * still hold it. A request it had parked is dropped. */
void kt_conn_close(struct kt_server *s, struct kt_conn *c, const char *why)
{
	size_t before = c->out.len;

	if (c->closed)
		return;
	log_debug("connection %llu (uid %lu pid %ld) closed: %s", (unsigned long long)c->id,
		  (unsigned long)c->peer.uid, (long)c->peer.pid, why);
	kt_loop_io_del(s->loop, c->io);
	c->io = NULL;
	close(c->fd);
	c->fd = -1;
	c->closed = true;
	if (c->busy || c->watching)
		s->h.gone(s->h.ctx, c->id);
	c->busy = false;
	c->watching = false;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	kt_buf_free(&c->in);
	kt_buf_free(&c->out);
	kt_conn_out_changed(s, c, before);
	if (c->use != NULL)
		c->use->conns--;
	s->nconns--;
	/* Off the ready list too (it is short: only connections with work). */
	if (c->ready) {
		struct kt_conn **pp = &s->ready;

		while (*pp != NULL && *pp != c)
			pp = &(*pp)->ready_next;
		if (*pp == c)
			*pp = c->ready_next;
		c->ready = false;
	}
	/* A separate link: a connection closed while kt_server_run_ready()
	 * walks its taken list is still on that list, and its ready_next must
	 * stay as it is until the walk has passed it. */
	c->closed_next = s->closed;
	s->closed = c;
}

void kt_conn_reap(struct kt_server *s)
{
	while (s->closed != NULL) {
		struct kt_conn *c = s->closed;

		s->closed = c->closed_next;
		free(c);
	}
}

/* Whether the uid's unsent answers keep its connections from reading. */
bool kt_conn_over_share(const struct kt_conn *c)
{
	return c->use != NULL && c->use->out >= UID_OUT_SHARE;
}

void kt_conn_out_changed(struct kt_server *s, struct kt_conn *c, size_t before)
{
	size_t after = c->out.len;

	s->out_total = s->out_total - before + after;
	if (c->use == NULL)
		return;
	c->use->out = c->use->out - before + after;
	if (c->use->stalled && c->use->out < UID_OUT_SHARE) {
		/* Rare (a uid that does not read its answers); a walk is fine. */
		c->use->stalled = false;
		for (struct kt_conn *o = s->conns; o != NULL; o = o->next) {
			if (o->use == c->use)
				kt_conn_ready_add(s, o);
		}
	}
}

/* Registers what the connection wants now: input unless it is waiting on
 * AWS, holds a whole frame it has not handled yet, or has too much unsent
 * output; output while any is pending. */
static void conn_update_events(struct kt_server *s, struct kt_conn *c)
{
	uint32_t events = 0;

	if (c->closed)
		return;
	/* A connection kept from reading by its uid's share is woken when
	 * the share has room again (out_changed). */
	if (kt_conn_over_share(c))
		c->use->stalled = true;
	else if (!c->busy && !c->hangup && !c->ready && c->out.len < OUT_HIGH && c->in.len < IN_MAX)
		events |= EPOLLIN;
	if (c->out.len > 0)
		events |= EPOLLOUT;
	if (events == c->events)
		return;
	c->events = events;
	kt_loop_io_mod(s->loop, c->io, events);
}

/* Appends an answer (reference taken). A failure to serialise is answered
 * as an internal error, so the client is never left waiting. */
static int conn_answer(struct kt_server *s, struct kt_conn *c, struct json_object *answer)
{
	size_t before = c->out.len;
	int rc = answer != NULL ? kt_proto_send_json(&c->out, answer) : -ENOMEM;

	kt_json_put_wiped(answer);
	if (rc == -EMSGSIZE) {
		struct json_object *e =
			kt_proto_error(KT_PERR_INTERNAL, "the answer would be larger than 1 MiB");

		rc = e != NULL ? kt_proto_send_json(&c->out, e) : -ENOMEM;
		kt_json_put_wiped(e);
	}
	kt_conn_out_changed(s, c, before);
	c->last_active = kt_server_mono_now();
	return rc;
}

/* Gives back a buffer's storage once it is empty and larger than everyday
 * traffic needs (keep is that size), so a thousand idle connections stay
 * small; a buffer that everyday traffic fills is kept, not made anew for
 * every request. */
static void buf_trim(struct kt_buf *b, size_t keep)
{
	if (b->len == 0 && b->cap > keep)
		kt_buf_free(b);
}

/* The length a frame's header announces, once the header is in. Returns
 * 1 with *need (the whole frame's bytes), 0 before the header is in, or
 * -EMSGSIZE / -EBADMSG for a length keyturnd never accepts. */
int kt_conn_frame_need(const struct kt_conn *c, size_t *need)
{
	return kt_proto_frame_len(c->in.data, c->in.len, KT_PROTO_MAX_REQUEST, need);
}

static void complain_frame(struct kt_server *s, struct kt_conn *c, int rc)
{
	kt_uidtab_complain(s->uids, c->peer.uid, KT_COMPLAINT_FRAME, kt_server_mono_now(),
			   "closing connection of uid %lu pid %ld: %s", (unsigned long)c->peer.uid,
			   (long)c->peer.pid,
			   rc == -EMSGSIZE ? "request frame longer than 64 KiB"
					   : "frame of length 0");
}

/* Handles whole frames in the input buffer, at most REQUESTS_PER_TURN, until
 * a request parks or output backs up. Returns false when the connection
 * must be closed (a frame keyturnd never accepts). */
static bool conn_process(struct kt_server *s, struct kt_conn *c)
{
	/* A watching connection takes no more requests (PROTOCOL.md). */
	if (c->watching)
		return c->in.len == 0;
	for (int turn = 0; !c->busy && c->out.len < OUT_HIGH; turn++) {
		struct json_object *req, *answer = NULL;
		bool written = false;
		size_t need = 0, before;
		int rc = kt_conn_frame_need(c, &need);

		if (rc < 0) {
			complain_frame(s, c, rc);
			return false;
		}
		if (rc == 0 || c->in.len < need)
			return true;
		if (kt_conn_over_share(c)) {
			c->use->stalled = true;
			return true;
		}
		if (turn == REQUESTS_PER_TURN || c->watching) {
			kt_conn_ready_add(s, c);
			return true;
		}
		s->requests++;
		req = kt_json_parse(c->in.data + KT_PROTO_HDR, need - KT_PROTO_HDR);
		kt_buf_consume(&c->in, need);
		/* What is left is the start of the next frame. */
		c->frame_start = kt_server_mono_now();
		buf_trim(&c->in, 2 * READ_AHEAD);
		if (req == NULL || !json_object_is_type(req, json_type_object)) {
			kt_uidtab_complain(
				s->uids, c->peer.uid, KT_COMPLAINT_REQUEST, c->frame_start,
				"uid %lu pid %ld sent a request that is not a JSON object",
				(unsigned long)c->peer.uid, (long)c->peer.pid);
			answer = kt_proto_error(KT_PERR_BAD_REQUEST,
						"the request is not a JSON object");
		} else {
			before = c->out.len;
			struct kt_request r = { c->id, &c->peer, req, 0, &c->out, false, 0 };

			switch (s->h.request(s->h.ctx, &r, &answer)) {
			case KT_OP_PARKED:
				c->busy = true;
				break;
			case KT_OP_WRITTEN:
				c->last_active = kt_server_mono_now();
				kt_conn_out_changed(s, c, before);
				written = true;
				break;
			case KT_OP_ANSWER:
				break;
			}
		}
		/* A parked request is still held (and later wiped) by the handler;
		 * only the last holder may wipe it. */
		if (c->busy)
			json_object_put(req);
		else
			kt_json_put_wiped(req);
		if (!c->busy && !written && conn_answer(s, c, answer) < 0)
			return false;
	}
	return true;
}

/* Reads what has arrived, straight into the input buffer: at most the rest
 * of the frame being assembled plus READ_AHEAD, and never more than the
 * frame's header allows. One recv() a turn: a connection that sends more
 * is read again at the next turn, after the others. */
static bool conn_read(struct kt_server *s, struct kt_conn *c)
{
	size_t need = 0, room;
	ssize_t n;
	int rc = kt_conn_frame_need(c, &need);

	if (rc < 0) {
		complain_frame(s, c, rc);
		return false;
	}
	if (rc == 0 || c->in.len >= need)
		need = c->in.len < KT_PROTO_HDR ? KT_PROTO_HDR : c->in.len;
	room = need - c->in.len + READ_AHEAD;
	if (room > c->in.max - c->in.len)
		room = c->in.max - c->in.len;
	if (room == 0)
		return true;
	if (kt_buf_reserve(&c->in, room) < 0)
		return false;
	n = recv(c->fd, c->in.data + c->in.len, room, 0);
	if (n > 0) {
		if (c->in.len == 0)
			c->frame_start = kt_server_mono_now();
		c->in.len += (size_t)n;
		c->in.data[c->in.len] = '\0';
		return true;
	}
	if (n == 0)
		c->hangup = true;
	else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		return false;
	return true;
}

static bool conn_write(struct kt_server *s, struct kt_conn *c)
{
	size_t before = c->out.len;
	bool ok = true;

	while (c->out.len > 0) {
		ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n > 0) {
			kt_buf_consume(&c->out, (size_t)n);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			break;
		ok = false;
		break;
	}
	buf_trim(&c->out, OUT_KEEP);
	kt_conn_out_changed(s, c, before);
	return ok;
}

static void conn_event(struct kt_server *s, struct kt_conn *c, uint32_t events)
{
	if (c->closed)
		return;
	/* A peer that hung up cannot read an answer: whatever it waits for
	 * is dropped now, not when AWS answers (epoll would report the
	 * hang-up at every turn until then). */
	if (events & (EPOLLERR | EPOLLHUP)) {
		kt_conn_close(s, c, "peer went away");
		return;
	}
	if ((events & EPOLLIN) && !conn_read(s, c)) {
		kt_conn_close(s, c, "read error or bad frame");
		return;
	}
	if (!c->ready && !conn_process(s, c)) {
		kt_conn_close(s, c, "bad frame");
		return;
	}
	if (c->out.len > 0 && !conn_write(s, c)) {
		kt_conn_close(s, c, "peer went away");
		return;
	}
	/* Requests that waited behind output the peer has now taken are
	 * handled at the end of the turn: the peer may send nothing more
	 * until it has their answers. */
	if (!c->busy && c->out.len < OUT_HIGH && c->in.len > 0 && !kt_conn_over_share(c)) {
		size_t need = 0;

		if (kt_conn_frame_need(c, &need) == 1 && c->in.len >= need)
			kt_conn_ready_add(s, c);
	}
	/* The peer is done sending: finish what it asked, then close. A
	 * watcher that hangs up is done: nothing more it could be told. */
	if (c->hangup && c->watching) {
		kt_conn_close(s, c, "watcher hung up");
		return;
	}
	if (c->hangup && !c->busy && !c->ready && c->out.len == 0) {
		kt_conn_close(s, c, "peer closed");
		return;
	}
	conn_update_events(s, c);
}

void kt_conn_io_event(void *ctx, uint32_t events)
{
	struct kt_conn *c = ctx;

	conn_event(c->s, c, events);
}

/* Handles connections that had more whole requests than one loop turn
 * allows, and those whose parked request was answered. Returns true when
 * some are left for the next turn. */
bool kt_conn_run_ready(struct kt_server *s)
{
	struct kt_conn *list = s->ready;

	/* Connections that come back while this runs wait for the next turn. */
	s->ready = NULL;
	while (list != NULL) {
		struct kt_conn *c = list;

		list = c->ready_next;
		c->ready = false;
		conn_event(s, c, 0);
	}
	return s->ready != NULL;
}

void kt_server_reply(struct kt_server *s, uint64_t conn_id, struct json_object *answer)
{
	struct kt_conn *c;

	for (c = s->conns; c != NULL; c = c->next) {
		if (c->id == conn_id)
			break;
	}
	if (c == NULL || !c->busy) {
		/* The client left while its request waited on AWS. */
		kt_json_put_wiped(answer);
		return;
	}
	c->busy = false;
	if (conn_answer(s, c, answer) < 0) {
		kt_conn_close(s, c, "cannot queue the answer");
		return;
	}
	/* More requests may have arrived behind the parked one. */
	kt_conn_ready_add(s, c);
}

static struct kt_conn *conn_find(struct kt_server *s, uint64_t conn_id)
{
	struct kt_conn *c;

	for (c = s->conns; c != NULL; c = c->next) {
		if (c->id == conn_id)
			return c;
	}
	return NULL;
}

int kt_server_watch(struct kt_server *s, uint64_t conn_id)
{
	struct kt_conn *c = conn_find(s, conn_id);

	if (c == NULL || c->busy || c->hangup)
		return -ENOENT;
	c->watching = true;
	return 0;
}

int kt_server_push(struct kt_server *s, uint64_t conn_id, struct json_object *answer, bool last)
{
	struct kt_conn *c = conn_find(s, conn_id);
	size_t before;
	int rc;

	if (c == NULL || !c->watching) {
		kt_json_put_wiped(answer);
		return -ENOENT;
	}
	before = c->out.len;
	rc = answer != NULL ? kt_proto_send_json(&c->out, answer) : -ENOMEM;
	kt_json_put_wiped(answer);
	kt_conn_out_changed(s, c, before);
	/* A watcher that does not read is not given more memory: its frames
	 * are bounded as every other answer is, and past that it is closed. */
	if (rc < 0 || c->out.len > OUT_HIGH || kt_conn_over_share(c)) {
		log_warn("closing watching connection %llu of uid %lu pid %ld: %zu bytes of "
			 "changes unread (limit %u for the connection, %u for the uid)",
			 (unsigned long long)c->id, (unsigned long)c->peer.uid, (long)c->peer.pid,
			 c->out.len, (unsigned)OUT_HIGH, UID_OUT_SHARE);
		c->watching = false;
		kt_conn_close(s, c, "watcher does not read");
		return -ENOBUFS;
	}
	if (last) {
		c->watching = false;
		c->hangup = true;
	}
	kt_conn_ready_add(s, c);
	return 0;
}
