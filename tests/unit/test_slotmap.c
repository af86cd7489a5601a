/* The slot map: every slot has an owner in range, load is balanced, and growing the core
 * count moves only the slots the new core takes. */
#include "check.h"
#include "slotmap.h"

static void test_owners_in_range(void)
{
	struct slotmap m;
	for (unsigned n = 1; n <= 8; n++) {
		slotmap_build(&m, n);
		for (unsigned s = 0; s < DURO_SLOTS; s++)
			CHECK(m.owner[s] < n);
	}
}

static void test_balance(void)
{
	struct slotmap m;
	for (unsigned n = 2; n <= 8; n++) {
		slotmap_build(&m, n);
		unsigned count[8] = { 0 };
		for (unsigned s = 0; s < DURO_SLOTS; s++)
			count[m.owner[s]]++;
		for (unsigned c = 0; c < n; c++) {
			/* Within 15% of the mean: rendezvous hashing over 4096 slots. */
			double share = (double)count[c] * n / DURO_SLOTS;
			CHECK(share > 0.85 && share < 1.15);
		}
	}
}

static void test_minimal_movement(void)
{
	struct slotmap a, b;
	for (unsigned n = 1; n < 8; n++) {
		slotmap_build(&a, n);
		slotmap_build(&b, n + 1);
		unsigned moved = 0;
		for (unsigned s = 0; s < DURO_SLOTS; s++) {
			if (a.owner[s] != b.owner[s]) {
				CHECK_EQ(b.owner[s], n); /* only ever to the new core */
				moved++;
			}
		}
		double frac = (double)moved / DURO_SLOTS;
		CHECK(frac < 1.3 / (n + 1) && frac > 0.7 / (n + 1));
	}
}

static void test_slot_of_id(void)
{
	uint8_t id[32] = { 0x12, 0x34 };
	CHECK_EQ(slotmap_slot(id), 0x123);
	uint8_t hi[32] = { 0xff, 0xff };
	CHECK_EQ(slotmap_slot(hi), DURO_SLOTS - 1);
	uint8_t lo[32] = { 0x00, 0x0f };
	CHECK_EQ(slotmap_slot(lo), 0);
}

int main(void)
{
	RUN(test_owners_in_range);
	RUN(test_balance);
	RUN(test_minimal_movement);
	RUN(test_slot_of_id);
	return CHECK_DONE();
}
