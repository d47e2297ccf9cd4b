# pg_saga: built with PGXS.  `make`, `make install`, `make installcheck`.
MODULE_big = pg_saga
OBJS = \
	src/pg_saga.o \
	src/model.o \
	src/settings.o \
	src/launcher.o \
	src/worker.o \
	src/engine.o \
	src/remote.o \
	src/remote_backend.o \
	src/barrier.o \
	src/recovery.o \
	src/forget.o \
	src/catalog.o \
	src/target.o \
	src/http_request.o \
	src/remote_http.o \
	src/functions.o

EXTENSION = pg_saga
DATA = pg_saga--1.0.sql pg_saga--1.0--1.1.sql pg_saga--1.1--1.2.sql pg_saga--1.2--1.3.sql \
	pg_saga--1.3--1.4.sql pg_saga--1.4--1.5.sql pg_saga--1.5--1.6.sql \
	pg_saga_participant.sql
PGFILEDESC = "pg_saga - distributed transactions coordinated from inside PostgreSQL"

REGRESS = setup api_errors building lifecycle security pictures reference bad_input start results at bound definitions http
REGRESS_OPTS = --load-extension=plpgsql

PG_CPPFLAGS = -I$(libpq_srcdir) -Isrc
SHLIB_LINK_INTERNAL = $(libpq)
SHLIB_LINK = -lcurl

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Every object is rebuilt when a header changes: the headers share the
# structs (a SagaStep laid out anew must not meet an object built before).
$(OBJS): $(wildcard src/*.h)

# Every object depends on the shared header (PGXS does not track headers).
$(OBJS): src/pg_saga.h src/compat.h
