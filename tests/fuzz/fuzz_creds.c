/* libFuzzer target: the credential parsers of the AWS client: the shared
 * config and credentials files (sidecar/aws/profile.c, read from a memfd
 * through /proc/self/fd/N), the JSON of the container and instance
 * metadata endpoints and the XML of STS AssumeRoleWithWebIdentity (both
 * static in creds_meta.c and creds_sts.c, which are compiled into this
 * file so that nothing in them has to be made public for the fuzzer). The
 * first byte picks the parser; the rest is the file or the answer's body. */
#include "../../sidecar/aws/creds_meta.c"
#include "../../sidecar/aws/creds_sts.c"

#include <stdint.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aws/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int memfd = -1;

static void profile(const char *body, size_t len, bool is_config, const char *name)
{
	struct aws_profile p;
	char path[64], err[256];

	if (memfd < 0) {
		memfd = memfd_create("aws-config", MFD_CLOEXEC);
		if (memfd < 0 || fchmod(memfd, 0600) < 0)
			abort();
	}
	if (ftruncate(memfd, 0) < 0 || pwrite(memfd, body, len, 0) != (ssize_t)len)
		abort();
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	memset(&p, 0, sizeof(p));
	if (aws_profile_load(path, name, is_config, &p, err, sizeof(err)) == 0) {
		(void)aws_profile_get(&p, "role_arn");
		(void)aws_profile_get(&p, "web_identity_token_file");
		(void)aws_profile_line(&p, "region");
		aws_profile_free(&p);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data + 1;
	size_t len = size - 1;
	struct aws_creds cr;
	struct aws_error err;

	if (size < 1)
		return 0;
	memset(&cr, 0, sizeof(cr));
	memset(&err, 0, sizeof(err));
	switch (data[0] % 6) {
	case 0:
		profile(body, len, true, "default");
		break;
	case 1:
		profile(body, len, true, "dev");
		break;
	case 2:
		profile(body, len, false, "default");
		break;
	case 3:
		if (meta_parse_creds(IMDS, "imds", body, len, &cr, &err) == 0)
			aws_creds_clear(&cr);
		break;
	case 4:
		if (sts_parse_creds(body, len, &cr, &err) == 0)
			aws_creds_clear(&cr);
		break;
	default:
		(void)sts_parse_error(400, body, len, "https://sts.eu-west-1.amazonaws.com/", &err);
		break;
	}
	aws_error_clear(&err);
	return 0;
}
