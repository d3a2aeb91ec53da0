/* keyturnctl schedule EXPR [--from TIME] [--count N]: the next rotation
 * windows of an AWS rate()/cron() schedule expression, computed here (no
 * daemon), printed like systemd-analyze calendar. */
#ifndef KT_CTL_SCHEDULE_H
#define KT_CTL_SCHEDULE_H

/* argv[0] is "schedule"; returns keyturnctl's exit code (0, or 2 for a
 * usage error or an expression AWS would refuse). */
int kt_ctl_schedule(int argc, char **argv);

#endif
