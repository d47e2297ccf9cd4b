# pg_saga: built with PGXS.  `make`, `make install`, then, as the OS user
# postgres, `make installcheck` (pg_regress, then the TAP tests) and `make
# pgtap` (the pgTAP files).  Each test makes its own throwaway clusters: no
# server needs to be set up.  See docs/contributing.md.
MODULE_big = pg_saga
OBJS = \
	src/init.o \
	src/shmem.o \
	src/model.o \
	src/settings.o \
	src/launcher.o \
	src/worker.o \
	src/progress.o \
	src/engine.o \
	src/remote.o \
	src/remote_backend.o \
	src/remote_error.o \
	src/barrier.o \
	src/batch.o \
	src/results.o \
	src/recovery.o \
	src/forget.o \
	src/store.o \
	src/target.o \
	src/http_request.o \
	src/remote_http.o \
	src/functions.o

EXTENSION = pg_saga
DATA = pg_saga--1.0.sql pg_saga--1.0--1.1.sql pg_saga--1.1--1.2.sql pg_saga--1.2--1.3.sql \
	pg_saga--1.3--1.4.sql pg_saga--1.4--1.5.sql pg_saga--1.5--1.6.sql pg_saga--1.6--1.7.sql pg_saga--1.7--1.8.sql pg_saga--1.8--1.9.sql \
	pg_saga_participant.sql
PGFILEDESC = "pg_saga - distributed transactions coordinated from inside PostgreSQL"

REGRESS = setup api_errors building lifecycle security pictures reference bad_input start batch_call results at bound definitions http
REGRESS_OPTS = --load-extension=plpgsql

PG_CPPFLAGS = -I$(libpq_srcdir) -Isrc
SHLIB_LINK_INTERNAL = $(libpq)
SHLIB_LINK = -lcurl

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)

# The TAP tests (test/t/*.pl, with PostgreSQL::Test::Cluster and the
# modules of test/perl) run after pg_regress in `make installcheck`; some of
# them: `make prove_installcheck PROVE_TESTS=test/t/001_transfer.pl`.
TAP_TESTS = 1
EXTRA_CLEAN = tmp_check_regress/

# Warnings are errors; PG_CFLAGS= on the command line builds without them.
PG_CFLAGS = -Wall -Werror

# SAGA_CHECKS=1 builds the checks of lifecycle transitions (SAGA_CHECK_STATE
# in src/pg_saga.h): a transition that starts from a state it must not
# raises an ERROR.  scripts/test.sh builds with them; a production build
# leaves them out.  Objects built without them are not rebuilt by this
# alone: `make clean` first (scripts/lib.sh does).
ifeq ($(SAGA_CHECKS),1)
PG_CPPFLAGS += -DSAGA_CHECKS
endif

include $(PGXS)

# pg_regress starts its own instance, configured by test/regress.conf
# (pg_saga preloaded), listening on 127.0.0.1 only (the tests' loopback
# target connects there); the test database is UTF8 with the C locale,
# whatever the environment says.  Another port: EXTRA_REGRESS_OPTS=--port=N.
REGRESS_OPTS += --temp-instance=./tmp_check_regress --temp-config=test/regress.conf \
	--host=127.0.0.1 --encoding=UTF8 --no-locale

override PROVE_FLAGS += -I ./test/perl
PROVE_TESTS ?= test/t/*.pl

.PHONY: prove_installcheck pgtap

prove_installcheck:
	$(prove_installcheck)

# The pgTAP files, run with pg_prove on a throwaway coordinator that
# test/pgtap.pl starts (it needs the pgtap extension and pg_prove); some of
# them: `make pgtap PGTAP_TESTS="test/pgtap/02_begin.sql ..."`.
PGTAP_TESTS ?= $(sort $(wildcard test/pgtap/*.sql))

pgtap:
	SAGA_PGTAP_TESTS='$(PGTAP_TESTS)' $(MAKE) prove_installcheck PROVE_TESTS=test/pgtap.pl

# Every object is rebuilt when a header changes: the headers share the
# structs (a SagaStep laid out anew must not meet an object built before).
$(OBJS): $(wildcard src/*.h)

# Every object depends on the shared header (PGXS does not track headers).
$(OBJS): src/pg_saga.h src/compat.h
