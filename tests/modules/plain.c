/* A shared object that is no module: no magic block, no duro_module_init. */
int plain_answer(void);
int plain_answer(void) { return 42; }
