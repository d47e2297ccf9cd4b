/*
 * pg_saga--1.6--1.7.sql: batches as one statement on the participant.
 *
 * Applied by ALTER EXTENSION pg_saga UPDATE, and by CREATE EXTENSION pg_saga
 * after the earlier scripts.
 *
 * No object of the coordinator's changes: 1.7 is the version of the
 * participant objects that pg_saga_participant.sql sets up, which gain
 * saga_participant.run_steps().  The worker of the 1.7 library sends a
 * batch of steps as one call of it (one statement, one remote transaction,
 * each step in a subtransaction of its own) where the worker of 1.5 and 1.6
 * sent a pipeline of statements per step (run_batch_step() between a
 * savepoint and its release).  Run saga.setup_participant(target) again on
 * each target after installing the 1.7 library: until then, a target whose
 * objects say 1.6 or earlier gets its steps one by one, as calls of their
 * own, and every saga still completes.  Participant objects of 1.7 keep
 * run_batch_step() and run_step() for coordinators of earlier versions.
 */
