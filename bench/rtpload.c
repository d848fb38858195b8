/*
 * The RTP load of bench:media in C, for when one core of the Node load
 * (bench/rtpLoad.ts) cannot drive enough streams to find where a relay or a
 * transcoder stops. Same job, same report: one UDP socket per stream end, a
 * 20 ms packet from each sending socket to its target (listening ones send
 * one a second, to stay latched), a count of what comes back, how late its
 * own sending ran, and what the kernel dropped at its sockets.
 *
 * Input (stdin): "warmup seconds n" then n lines "target send pt".
 * Output (stdout): the JSON line rtpLoad.ts prints, with what a listener's
 * jitter buffer would make of the streams (late_20, late_40, jitter). "window" on stderr when
 * the measured window starts. Plain RTP only (the SRTP load stays in Node).
 * Built by bench/media.ts with gcc when it is there.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * What a listener's jitter buffer would make of each stream: transit is the
 * arrival time less the RTP timestamp (ms, 8 kHz), relative to the stream's
 * first packet; a packet later than the least transit seen so far plus a
 * buffer's depth would be played late (a fixed 20 or 40 ms buffer would
 * drop it). jitter: RFC 3550's interarrival jitter estimate (6.4.1).
 */
struct stream {
  int fd; int target; int send; int pt; int port;
  int heard; unsigned ts0; double a0, min_transit, last_transit, jitter;
};

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Datagrams the kernel dropped at our sockets: the drops column of /proc/net/udp. */
static long drops(struct stream *s, int n, unsigned char *ours) {
  FILE *f = fopen("/proc/net/udp", "r");
  if (!f) return 0;
  char line[512];
  long total = 0;
  if (!fgets(line, sizeof line, f)) { fclose(f); return 0; }
  while (fgets(line, sizeof line, f)) {
    unsigned int port = 0;
    long d = 0;
    char *colon = strchr(line, ':');
    if (!colon || !(colon = strchr(colon + 1, ':'))) continue;
    port = (unsigned int)strtoul(colon + 1, NULL, 16);
    /* the 13th field */
    char *p = line;
    for (int k = 0; k < 12 && p; k++) {
      while (*p == ' ') p++;
      p = strchr(p, ' ');
    }
    if (!p) continue;
    d = strtol(p, NULL, 10);
    if (port < 65536 && ours[port]) total += d;
  }
  fclose(f);
  (void)s; (void)n;
  return total;
}

int main(void) {
  int warmup, seconds, n;
  if (scanf("%d %d %d", &warmup, &seconds, &n) != 3 || n <= 0) { fprintf(stderr, "bad job\n"); return 2; }
  struct stream *st = calloc(n, sizeof *st);
  static unsigned char ours[65536];
  int ep = epoll_create1(0);
  for (int i = 0; i < n; i++) {
    if (scanf("%d %d %d", &st[i].target, &st[i].send, &st[i].pt) != 3) { fprintf(stderr, "bad stream %d\n", i); return 2; }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    int rb = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rb, sizeof rb);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 2; }
    struct sockaddr_in t = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK), .sin_port = htons(st[i].target) };
    if (connect(fd, (struct sockaddr *)&t, sizeof t) < 0) { perror("connect"); return 2; }
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    st[i].port = ntohs(a.sin_port);
    ours[st[i].port] = 1;
    st[i].fd = fd;
    struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (unsigned)i };
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }
  unsigned char pkt[172];
  for (int k = 0; k < 160; k++) pkt[12 + k] = (unsigned char)((int)lround(127 + 100 * sin(2 * M_PI * k / 8)) & 0xff);
  long sent = 0, received = 0, late = 0, drops0 = 0, late20 = 0, late40 = 0;
  int measuring = 0, grace = 0;
  double start = now_ms(), due = start, window = start + warmup * 1000.0, end = window + seconds * 1000.0, grace_end = 0;
  int ticks = seconds * 50 + 10;
  double *lates = calloc(ticks, sizeof *lates);
  int nl = 0;
  double max_late = 0;
  unsigned seq = 0;
  struct epoll_event evs[256];
  char buf[2048];
  for (;;) {
    double t = now_ms();
    if (!measuring && !grace && t >= window) {
      measuring = 1;
      drops0 = drops(st, n, ours);
      fprintf(stderr, "window\n");
      fflush(stderr);
    }
    if (measuring && t >= end) { measuring = 0; grace = 1; grace_end = t + 60; }
    if (grace && t >= grace_end) break;
    while (!grace && due <= t) {
      if (measuring) {
        double l = t - due;
        if (nl < ticks) lates[nl++] = l;
        if (l > max_late) max_late = l;
      }
      seq = (seq + 1) & 0xffff;
      for (int i = 0; i < n; i++) {
        if (!st[i].send && (int)(seq % 50) != i % 50) continue;
        pkt[0] = 0x80;
        pkt[1] = (unsigned char)st[i].pt;
        pkt[2] = seq >> 8; pkt[3] = seq & 0xff;
        unsigned ts = seq * 160;
        pkt[4] = ts >> 24; pkt[5] = ts >> 16; pkt[6] = ts >> 8; pkt[7] = ts;
        unsigned ssrc = 0x1000 + i;
        pkt[8] = ssrc >> 24; pkt[9] = ssrc >> 16; pkt[10] = ssrc >> 8; pkt[11] = ssrc;
        if (send(st[i].fd, pkt, sizeof pkt, 0) == (ssize_t)sizeof pkt && measuring) sent++;
      }
      due += 20;
      t = now_ms();
    }
    int wait = grace ? (int)(grace_end - t) : (int)(due - t);
    if (wait < 0) wait = 0;
    int k = epoll_wait(ep, evs, 256, wait);
    for (int e = 0; e < k; e++) {
      int fd = st[evs[e].data.u32].fd;
      struct stream *s = &st[evs[e].data.u32];
      ssize_t got;
      while ((got = recv(fd, buf, sizeof buf, 0)) > 0) {
        if (got >= 12) {
          double a = now_ms();
          unsigned ts = ((unsigned)(unsigned char)buf[4] << 24) | ((unsigned)(unsigned char)buf[5] << 16) | ((unsigned)(unsigned char)buf[6] << 8) | (unsigned char)buf[7];
          if (!s->heard) { s->heard = 1; s->ts0 = ts; s->a0 = a; s->min_transit = 0; s->last_transit = 0; }
          double transit = (a - s->a0) - (double)(int)(ts - s->ts0) / 8.0;
          double d = fabs(transit - s->last_transit);
          s->jitter += (d - s->jitter) / 16.0;
          s->last_transit = transit;
          if (transit < s->min_transit) s->min_transit = transit;
          if (measuring && transit - s->min_transit > 20) late20++;
          if (measuring && transit - s->min_transit > 40) late40++;
        }
        if (measuring) received++;
        else if (grace) late++;
      }
    }
  }
  qsort(lates, nl, sizeof *lates, cmp);
  double p99 = nl ? lates[(int)(nl * 0.99)] : 0;
  double *jit = calloc(n, sizeof *jit);
  int nj = 0;
  for (int i = 0; i < n; i++) if (st[i].heard) jit[nj++] = st[i].jitter;
  qsort(jit, nj, sizeof *jit, cmp);
  double jp99 = nj ? jit[(int)(nj * 0.99)] : 0, jmax = nj ? jit[nj - 1] : 0;
  printf("{\"sent\":%ld,\"received\":%ld,\"received_relayed\":%ld,\"send_late_p99_ms\":%.1f,\"send_late_max_ms\":%.1f,\"kernel_drops\":%ld,"
         "\"late_20\":%ld,\"late_40\":%ld,\"jitter_p99_ms\":%.2f,\"jitter_max_ms\":%.2f}\n",
         sent, received, received + late, p99, max_late, drops(st, n, ours) - drops0, late20, late40, jp99, jmax);
  return 0;
}
