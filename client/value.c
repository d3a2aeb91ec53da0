/* The accessors of keyturn_value_t, and its wiped free. */
#include "config.h"

#include <stdlib.h>

#include "common/secmem.h"
#include "value.h"

const void *keyturn_value_data(const keyturn_value_t *v, size_t *len)
{
	if (len != NULL)
		*len = v != NULL ? v->len : 0;
	return v != NULL ? v->data : NULL;
}

int keyturn_value_is_binary(const keyturn_value_t *v)
{
	return v != NULL && v->binary;
}

const char *keyturn_value_name(const keyturn_value_t *v)
{
	return v != NULL ? v->name : NULL;
}

const char *keyturn_value_arn(const keyturn_value_t *v)
{
	return v != NULL ? v->arn : NULL;
}

const char *keyturn_value_version_id(const keyturn_value_t *v)
{
	return v != NULL ? v->version_id : NULL;
}

size_t keyturn_value_stage_count(const keyturn_value_t *v)
{
	return v != NULL ? v->nstages : 0;
}

const char *keyturn_value_stage(const keyturn_value_t *v, size_t i)
{
	return v != NULL && i < v->nstages ? v->stages[i] : NULL;
}

int64_t keyturn_value_fetched_at(const keyturn_value_t *v)
{
	return v != NULL ? v->fetched_at : 0;
}

int keyturn_value_is_stale(const keyturn_value_t *v)
{
	return v != NULL && v->stale;
}

void keyturn_value_free(keyturn_value_t *v)
{
	if (v == NULL)
		return;
	kt_free_wiped(v->data, v->len + 1);
	kt_str_free_wiped(v->name);
	kt_str_free_wiped(v->arn);
	kt_str_free_wiped(v->version_id);
	for (size_t i = 0; i < v->nstages; i++)
		kt_str_free_wiped(v->stages[i]);
	free(v->stages);
	kt_free_wiped(v, sizeof(*v));
}
