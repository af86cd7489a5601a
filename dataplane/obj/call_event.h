/* Calls as events (call_event.c): what call.c reports — a call reached its callee's core,
 * a call's outcome reached its caller's core — run as events of the objects involved. */
#ifndef DURO_OBJ_CALL_EVENT_H
#define DURO_OBJ_CALL_EVENT_H

#include "call.h"

/* The events call.c is given at init (obj_core.c wires them). */
extern const struct call_events call_events;

#endif
