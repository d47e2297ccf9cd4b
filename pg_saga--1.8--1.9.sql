/*
 * pg_saga--1.8--1.9.sql: a batch's values go apart from its SQL text.
 *
 * Applied by ALTER EXTENSION pg_saga UPDATE, and by CREATE EXTENSION pg_saga
 * after the earlier scripts.
 *
 * Nothing in the coordinator's schema changes.  What 1.9 changes is the
 * participant objects (pg_saga_participant.sql, which
 * saga.setup_participant installs) and how the worker sends a batch of
 * steps that bind values: the saga's values are data, never SQL text
 * (SPEC, "Bound values"), and the 1.7 and 1.8 workers wrote a batch's
 * values into the text of its run_steps() call, where they reached the
 * participant's pg_stat_activity and statement log.  The 1.9 worker sends
 * them as a parameter of a statement of their own just before the batch,
 * which saga_participant.run_steps() of 1.9 takes them from; to
 * participants whose objects are older (version() below 1.9) it sends
 * such steps one by one, each with its values as parameters, until
 * saga.setup_participant is run again on them.
 */
\echo Use "ALTER EXTENSION pg_saga UPDATE TO '1.9'" to load this file. \quit
