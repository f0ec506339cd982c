/*
 * gen_tomo: a test helper, not a unit test.  Writes one synthetic
 * enhanced mammography object (lib/emu/mammo) as a Part 10 file, frame by
 * frame, so that a 2 GB object costs this program one frame of memory:
 *
 *	gen_tomo [options] OUT.dcm
 *
 *   --frames N        frames (default 60)
 *   --size RxC        rows x columns of a frame (default 512x400; "full"
 *                     is 3328x2560)
 *   --class K         bto (default), bpx, bpx-processing, dx (one frame)
 *   --view V          RCC (default), LCC, RMLO, LMLO
 *   --anatomy-per-frame   Frame Laterality in every per-frame item, not
 *                     in the shared group
 *   --accession A, --patient-id P, --study-uid U, --series-uid U,
 *   --sop-uid U       (defaults: ACCTOMO1, 9990000001, new UIDs)
 *   --seed N          varies the texture
 *
 * Prints "path sop_instance_uid study_instance_uid bytes" on stdout.
 * Exit 0, 1 on a write error, 2 on a bad option.
 */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dicom/dicom.h"
#include "emu/emu.h"

static void
usage(void)
{
	fprintf(stderr, "usage: gen_tomo [--frames N] [--size RxC] "
	    "[--class bto|bpx|bpx-processing|dx] [--view V]\n"
	    "       [--anatomy-per-frame] [--accession A] [--patient-id P] "
	    "[--study-uid U]\n"
	    "       [--series-uid U] [--sop-uid U] [--seed N] OUT.dcm\n");
}

static int
uid_or_new(const char *given, char out[DCM_UID_MAX], struct err *e)
{
	if (given == NULL)
		return dcm_uid_new(out, e);
	snprintf(out, DCM_UID_MAX, "%s", given);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "frames", required_argument, NULL, 'f' },
		{ "size", required_argument, NULL, 's' },
		{ "class", required_argument, NULL, 'c' },
		{ "view", required_argument, NULL, 'v' },
		{ "anatomy-per-frame", no_argument, NULL, 'p' },
		{ "accession", required_argument, NULL, 'a' },
		{ "patient-id", required_argument, NULL, 'i' },
		{ "study-uid", required_argument, NULL, 'S' },
		{ "series-uid", required_argument, NULL, 'E' },
		{ "sop-uid", required_argument, NULL, 'U' },
		{ "seed", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct mammo_exam x = {
		.patient_name = "Tomo^Test", .patient_id = "9990000001",
		.birth_date = "19650101", .sex = "F",
		.accession_number = "ACCTOMO1", .study_id = "1",
		.study_description = "Screening tomosynthesis",
		.requested_procedure_id = "RP1", .study_date = "20261207",
		.study_time = "101500", .mpps_sop_instance_uid = "",
		.station_name = "GEN-TOMO",
	};
	struct mammo_image img = { .exam = &x, .rows = 512, .cols = 400,
	    .frames = 60, .instance_number = 1 };
	const char *study = NULL, *series = NULL, *sop = NULL;
	char study_uid[DCM_UID_MAX], series_uid[DCM_UID_MAX];
	char sop_uid[DCM_UID_MAX];
	struct err e = { 0 };
	uint64_t written = 0;
	int c, fd;

	if (mammo_view_parse("RCC", &img.view, &e) == -1)
		return 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'f':
			img.frames = atoi(optarg);
			break;
		case 's':
			if (mammo_size_parse(optarg, &img.rows, &img.cols,
			    &e) == -1)
				goto bad;
			break;
		case 'c':
			if (mammo_kind_parse(optarg, &img.kind, &e) == -1)
				goto bad;
			break;
		case 'v':
			if (mammo_view_parse(optarg, &img.view, &e) == -1)
				goto bad;
			break;
		case 'p': img.anatomy_per_frame = 1; break;
		case 'a': x.accession_number = optarg; break;
		case 'i': x.patient_id = optarg; break;
		case 'S': study = optarg; break;
		case 'E': series = optarg; break;
		case 'U': sop = optarg; break;
		case 'r': img.seed = (unsigned)atoi(optarg); break;
		default:
			usage();
			return 2;
		}
	}
	if (argc - optind != 1) {
		usage();
		return 2;
	}
	if (img.kind == MAMMO_KIND_AUTO)
		img.kind = MAMMO_KIND_BTO;
	if (uid_or_new(study, study_uid, &e) == -1 ||
	    uid_or_new(series, series_uid, &e) == -1 ||
	    uid_or_new(sop, sop_uid, &e) == -1)
		goto bad;
	x.study_instance_uid = study_uid;
	x.series_instance_uid = series_uid;
	img.sop_instance_uid = sop_uid;
	if ((fd = open(argv[optind], O_WRONLY | O_CREAT | O_TRUNC, 0644)) ==
	    -1) {
		perror(argv[optind]);
		return 1;
	}
	if (mammo_write(&img, fd, &written, &e) == -1 || close(fd) == -1) {
		fprintf(stderr, "gen_tomo: %s: %s\n", argv[optind],
		    e.msg[0] ? e.msg : "close failed");
		unlink(argv[optind]);
		return 1;
	}
	printf("%s %s %s %" PRIu64 "\n", argv[optind], sop_uid, study_uid,
	    written);
	return 0;
bad:
	fprintf(stderr, "gen_tomo: %s\n", e.msg);
	return 2;
}
