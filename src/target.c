/*-------------------------------------------------------------------------
 *
 * target.c
 *		Targets: foreign servers whose options are libpq connection options,
 *		or the base URL of an HTTP service, and the user mappings that give
 *		a saga's owner its credentials.
 *
 * The extension ships a validator-only foreign-data wrapper, pg_saga;
 * servers of postgres_fdw and dblink_fdw are accepted as well, since their
 * options are libpq's too.  Credentials come from the user mapping of the
 * saga's owner, or of PUBLIC, and the owner needs USAGE on the server.  As
 * in dblink and postgres_fdw, a non-superuser's mapping must carry a
 * password, and the remote must have asked for it (checked on connecting).
 *
 * A server of pg_saga with the option url is an HTTP target instead: its
 * options are url and ca_file, a user mapping is optional and may carry
 * bearer_token and headers (secrets: never in a message), and USAGE is
 * still what lets a role call it.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/reloptions.h"
#include "catalog/pg_foreign_server.h"
#include "commands/defrem.h"
#include "catalog/pg_user_mapping.h"
#include "foreign/foreign.h"
#include "libpq-fe.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

#include "pg_saga.h"
#include "http_request.h"
#include "target.h"

/* Options a user mapping may carry; everything else belongs to the server. */
static const char *const mapping_options[] = {
	"user", "password", "sslcert", "sslkey", "sslpassword", NULL
};

/* libpq options that make no sense for a target, or that we set ourselves. */
static const char *const refused_options[] = {
	"replication", "client_encoding", "fallback_application_name", NULL
};

/* Options of an HTTP target's server, and of its user mappings. */
static const char *const http_server_options[] = {"url", "ca_file", NULL};
static const char *const http_mapping_options[] = {"bearer_token", "headers", NULL};

static bool
in_list(const char *const *list, const char *name)
{
	for (; *list; list++)
		if (strcmp(*list, name) == 0)
			return true;
	return false;
}

/* Is name a libpq option a server of this wrapper may take? */
static bool
is_server_option(const char *name)
{
	static PQconninfoOption *defaults = NULL;
	PQconninfoOption *opt;

	if (defaults == NULL)
	{
		defaults = PQconndefaults();
		if (defaults == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory"),
					 errdetail("Could not get libpq's default connection options.")));
	}
	if (in_list(mapping_options, name) || in_list(refused_options, name))
		return false;
	for (opt = defaults; opt->keyword; opt++)
	{
		/* debug options ("D") are not for users */
		if (strcmp(opt->keyword, name) == 0 && strchr(opt->dispchar, 'D') == NULL)
			return true;
	}
	return false;
}

PG_FUNCTION_INFO_V1(saga_fdw_validator);

/* Does a list of server options make an HTTP target (it has url)? */
static bool
options_are_http(List *options)
{
	ListCell   *lc;

	foreach(lc, options)
		if (strcmp(((DefElem *) lfirst(lc))->defname, "url") == 0)
			return true;
	return false;
}

/* Checks the value of an HTTP option; never quotes a mapping's, which are secrets. */
static void
check_http_option(DefElem *def)
{
	char	   *value = defGetString(def);

	if (strcmp(def->defname, "url") == 0)
		http_check_url(value);
	else if (strcmp(def->defname, "ca_file") == 0 && !is_absolute_path(value))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("the option ca_file must be an absolute path")));
	else if (strcmp(def->defname, "headers") == 0)
		http_check_headers_json(value, NULL, true);
	else if (strcmp(def->defname, "bearer_token") == 0 &&
			 (strchr(value, '\r') || strchr(value, '\n')))
		ereport(ERROR,
				(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
				 errmsg("the option bearer_token may not hold CR or LF")));
}

/*
 * Validates the options of the pg_saga wrapper, its servers and mappings.
 * A server is a database (libpq options) or a service (url, ca_file),
 * never both; a mapping may carry both kinds, as the validator cannot
 * tell which server it is for.
 */
Datum
saga_fdw_validator(PG_FUNCTION_ARGS)
{
	List	   *options = untransformRelOptions(PG_GETARG_DATUM(0));
	Oid			catalog = PG_GETARG_OID(1);
	bool		http = catalog == ForeignServerRelationId && options_are_http(options);
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = lfirst(lc);
		bool		ok;

		if (catalog == ForeignServerRelationId && http)
			ok = in_list(http_server_options, def->defname);
		else if (catalog == ForeignServerRelationId)
			ok = is_server_option(def->defname) && !in_list(http_server_options, def->defname);
		else if (catalog == UserMappingRelationId)
			ok = in_list(mapping_options, def->defname) || in_list(http_mapping_options, def->defname);
		else
			ok = false;
		if (!ok && http && is_server_option(def->defname))
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\" for an HTTP target", def->defname),
					 errdetail("A server with the option url is an HTTP service, not a database."),
					 errhint("Servers of pg_saga take either libpq connection options or url and ca_file.")));
		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_FDW_INVALID_OPTION_NAME),
					 errmsg("invalid option \"%s\"", def->defname),
					 errhint(catalog == ForeignServerRelationId ?
							 "Servers of pg_saga take libpq connection options such as host, port and dbname (user and password belong in a user mapping), or url and ca_file for an HTTP service." :
							 catalog == UserMappingRelationId ?
							 "User mappings of pg_saga take user, password, sslcert, sslkey and sslpassword, or bearer_token and headers for an HTTP service." :
							 "The pg_saga wrapper takes no options here.")));
		check_http_option(def);
	}
	PG_RETURN_VOID();
}

/* Is server an HTTP target: of the pg_saga wrapper, with the option url? */
static bool
server_is_http(ForeignServer *server)
{
	ForeignDataWrapper *fdw = GetForeignDataWrapper(server->fdwid);

	return strcmp(fdw->fdwname, "pg_saga") == 0 && options_are_http(server->options);
}

/* The kind of target: TARGET_HTTP, TARGET_DATABASE, or TARGET_MISSING. */
TargetKind
target_kind(const char *target)
{
	ForeignServer *server = GetForeignServerByName(target, true);

	if (server == NULL)
		return TARGET_MISSING;
	return server_is_http(server) ? TARGET_HTTP : TARGET_DATABASE;
}

/* Options of owner's user mapping for server, or of PUBLIC's; NIL, false if none. */
static bool
find_user_mapping(Oid owner, Oid serverid, List **options)
{
	HeapTuple	tp;
	Datum		datum;
	bool		isnull;

	tp = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(owner),
						 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		tp = SearchSysCache2(USERMAPPINGUSERSERVER, ObjectIdGetDatum(InvalidOid),
							 ObjectIdGetDatum(serverid));
	if (!HeapTupleIsValid(tp))
		return false;
	datum = SysCacheGetAttr(USERMAPPINGUSERSERVER, tp, Anum_pg_user_mapping_umoptions, &isnull);
	*options = isnull ? NIL : untransformRelOptions(datum);
	ReleaseSysCache(tp);
	return true;
}

static bool
has_option(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = lfirst(lc);

		if (strcmp(def->defname, name) == 0 && defGetString(def)[0] != '\0')
			return true;
	}
	return false;
}

/*
 * Looks target up for owner.  On failure returns false with a message, a
 * detail-free hint folded in, and the SQLSTATE; never raises for a user
 * error, because the worker must fail the step rather than itself.
 */
static bool
lookup_target(const char *target, Oid owner, ForeignServer **server_out,
			  List **mapping_out, char **error, char **hint, int *sqlstate)
{
	ForeignServer *server;
	ForeignDataWrapper *fdw;
	List	   *mapping = NIL;

	*hint = NULL;
	server = GetForeignServerByName(target, true);
	if (server == NULL)
	{
		*error = psprintf("target \"%s\" does not exist", target);
		*hint = "A target is a foreign server: CREATE SERVER ... FOREIGN DATA WRAPPER pg_saga OPTIONS (host ..., dbname ...).";
		*sqlstate = ERRCODE_UNDEFINED_OBJECT;
		return false;
	}
	fdw = GetForeignDataWrapper(server->fdwid);
	if (strcmp(fdw->fdwname, "pg_saga") != 0 &&
		strcmp(fdw->fdwname, "postgres_fdw") != 0 &&
		strcmp(fdw->fdwname, "dblink_fdw") != 0)
	{
		*error = psprintf("server \"%s\" is not a pg_saga target", target);
		*hint = "Targets are servers of the foreign-data wrappers pg_saga, postgres_fdw or dblink_fdw.";
		*sqlstate = ERRCODE_INVALID_PARAMETER_VALUE;
		return false;
	}
	if (saga_foreign_server_aclcheck(server->serverid, owner, ACL_USAGE) != ACLCHECK_OK)
	{
		*error = psprintf("permission denied for foreign server %s", target);
		*hint = "Grant USAGE on the server to the saga's owner.";
		*sqlstate = ERRCODE_INSUFFICIENT_PRIVILEGE;
		return false;
	}
	if (server_is_http(server))
	{
		/* a service: a mapping is optional, and holds a token, not a password */
		(void) find_user_mapping(owner, server->serverid, &mapping);
		*server_out = server;
		*mapping_out = mapping;
		return true;
	}
	if (!find_user_mapping(owner, server->serverid, &mapping))
	{
		*error = psprintf("user mapping not found for user \"%s\", server \"%s\"",
						  GetUserNameFromId(owner, true) ? GetUserNameFromId(owner, true) : "?",
						  target);
		*hint = "Create one with CREATE USER MAPPING FOR ... SERVER ... OPTIONS (user ..., password ...).";
		*sqlstate = ERRCODE_UNDEFINED_OBJECT;
		return false;
	}
	if (!superuser_arg(owner) && !has_option(mapping, "password"))
	{
		*error = pstrdup("password is required");
		*hint = "Non-superusers must give a password in their user mapping, and the target must ask for it.";
		*sqlstate = ERRCODE_S_R_E_PROHIBITED_SQL_STATEMENT_ATTEMPTED;
		return false;
	}
	*server_out = server;
	*mapping_out = mapping;
	return true;
}

/* Raises the error a user should see if owner cannot use target. */
void
target_check_usable(const char *target, Oid owner)
{
	ForeignServer *server;
	List	   *mapping;
	char	   *error;
	char	   *hint;
	int			sqlstate;

	if (!lookup_target(target, owner, &server, &mapping, &error, &hint, &sqlstate))
		ereport(ERROR,
				(errcode(sqlstate),
				 errmsg("%s", error),
				 hint ? errhint("%s", hint) : 0));
}

/*
 * Builds the libpq keywords and values to reach target as owner (inside a
 * transaction): the server's options, the mapping's, and those pg_saga
 * sets itself (an application name, and the client encoding of this
 * database, so that what the target says arrives in it).  Every connection
 * to a target, the worker's and a user backend's, is made with these.
 * Returns false, with error and SQLSTATE, if it cannot.
 */
bool
target_conninfo(const char *target, Oid owner, const char ***keywords_out,
				const char ***values_out, bool *need_password,
				char **error, int *sqlstate)
{
	ForeignServer *server;
	List	   *mapping;
	char	   *hint;
	const char **keywords;
	const char **values;
	ListCell   *lc;
	int			n = 0;

	if (!lookup_target(target, owner, &server, &mapping, error, &hint, sqlstate))
		return false;
	if (server_is_http(server))
	{
		*error = psprintf("target \"%s\" is an HTTP target, not a database", target);
		*sqlstate = ERRCODE_INVALID_PARAMETER_VALUE;
		return false;
	}

	keywords = palloc0((list_length(server->options) + list_length(mapping) + 3) * sizeof(char *));
	values = palloc0((list_length(server->options) + list_length(mapping) + 3) * sizeof(char *));
	foreach(lc, server->options)
	{
		DefElem    *def = lfirst(lc);

		/* postgres_fdw and dblink servers carry options of their own */
		if (!is_server_option(def->defname))
			continue;
		keywords[n] = def->defname;
		values[n++] = defGetString(def);
	}
	foreach(lc, mapping)
	{
		DefElem    *def = lfirst(lc);

		if (!in_list(mapping_options, def->defname))
			continue;
		keywords[n] = def->defname;
		values[n++] = defGetString(def);
	}
	/* refused as options (refused_options): only these values are used */
	keywords[n] = "fallback_application_name";
	values[n++] = "pg_saga";
	keywords[n] = "client_encoding";
	values[n++] = GetDatabaseEncodingName();
	*keywords_out = keywords;
	*values_out = values;
	*need_password = !superuser_arg(owner);
	return true;
}

static const char *
option_value(List *options, const char *name)
{
	ListCell   *lc;

	foreach(lc, options)
	{
		DefElem    *def = lfirst(lc);

		if (strcmp(def->defname, name) == 0)
			return defGetString(def);
	}
	return NULL;
}

/*
 * What an HTTP target gives owner's calls (inside a transaction): its base
 * URL and CA file, and the bearer token and headers of owner's user
 * mapping (or PUBLIC's).  Returns false, with error and SQLSTATE, if owner
 * cannot use it or it is not an HTTP target.
 */
bool
target_http(const char *target, Oid owner, HttpTarget *http, char **error, int *sqlstate)
{
	ForeignServer *server;
	List	   *mapping;
	char	   *hint;
	const char *value;
	size_t		len;

	if (!lookup_target(target, owner, &server, &mapping, error, &hint, sqlstate))
		return false;
	if (!server_is_http(server))
	{
		*error = psprintf("target \"%s\" is not an HTTP target", target);
		*sqlstate = ERRCODE_INVALID_PARAMETER_VALUE;
		return false;
	}
	memset(http, 0, sizeof(*http));
	http->url = pstrdup(option_value(server->options, "url"));
	len = strlen(http->url);
	while (len > 0 && http->url[len - 1] == '/')
		http->url[--len] = '\0';
	if ((value = option_value(server->options, "ca_file")) != NULL)
		http->ca_file = pstrdup(value);
	if ((value = option_value(mapping, "bearer_token")) != NULL && value[0] != '\0')
		http->bearer_token = pstrdup(value);
	if ((value = option_value(mapping, "headers")) != NULL)
		http->headers = http_mapping_headers(value);
	return true;
}
