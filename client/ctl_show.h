/* keyturnctl's human-readable output of metadata answers (list, status,
 * refresh), from the daemon's parsed JSON. Never given a secret value. */
#ifndef KT_CTL_SHOW_H
#define KT_CTL_SHOW_H

#include <json-c/json.h>

/* One secret's metadata (a list entry, or a refresh answer), line by line. */
void ctl_show_secret(struct json_object *e);

/* The list answer as a table. */
void ctl_show_list(struct json_object *o);

/* The status answer as a summary. */
void ctl_show_status(struct json_object *o);

#endif
