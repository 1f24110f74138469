/*
 * testguest.c - a tiny bare-metal guest for hagent's tests and benchmarks.
 *
 * Prints "TESTGUEST boot", then "HB <n>" every 200 ms (n from 1), on COM1
 * (0x3f8) and on the debug port 0xe9.  Single-character commands typed on
 * COM1 make it misbehave on purpose; see README.  Interrupts are never
 * enabled: time comes from the TSC, calibrated against PIT channel 0 at boot
 * (wall-clock under TCG and KVM).
 *
 * Under Xen (HVM or PVH, found through CPUID) it also writes every line to
 * the PV console ring and reads commands from it, and the commands that stop
 * the guest become hypercalls (SCHEDOP_shutdown, SCHEDOP_watchdog): Xen has
 * no pvpanic or ib700, and a PVH guest no ACPI or reset port.  A minimal
 * xenstore client watches control/shutdown, so that the toolstack's
 * suspend (save, migrate), poweroff and reboot requests work.  With a vbd
 * in xenstore, a PV block frontend writes numbered records to the disk (`x`,
 * `W`, `S`) and reconnects to the new backend after a restore.  Nothing of
 * that runs without Xen's CPUID leaves, so under QEMU it behaves as before.
 *
 * Built freestanding for i386: no libc, no libgcc (so no 64-bit division).
 */
#include <stddef.h>
#include <stdint.h>

#define COM1            0x3f8
#define DEBUGCON        0xe9
#define PVPANIC         0x505
#define ACPI_PM1A_CNT   0x604   /* QEMU PIIX4 PM: SLP_EN | SLP_TYP(0) = poweroff */
#define RESET_CTRL      0xcf9
#define IB700_ARM       0x443
#define IB700_2S        0x0e

#define HB_PERIOD_MS    200
#define DIRTY_TICK_MS   10
#define DIRTY_BASE      0x400000u       /* dirty buffer starts at 4 MiB */
#define DIRTY_TOP_MAX   0xc0000000u
#define DIRTY_MAX_MIBS  100000u
#define PAGE            4096u

/* Primary IDE channel, master drive, ATA PIO */
#define ATA_DATA        0x1f0
#define ATA_SECCOUNT    0x1f2
#define ATA_LBA0        0x1f3
#define ATA_LBA1        0x1f4
#define ATA_LBA2        0x1f5
#define ATA_DRIVE       0x1f6
#define ATA_STATUS      0x1f7   /* read: status; write: command */
#define ATA_CTRL        0x3f6   /* write: device control; read: alt status */
#define ATA_BSY         0x80
#define ATA_DF          0x20
#define ATA_DRQ         0x08
#define ATA_ERR         0x01
#define ATA_TIMEOUT_MS  2000
#define DISK_SECTORS    8       /* sectors per `x` write (4 KiB) */
#define DISK_STRIDE     2048    /* LBA step between successive writes (1 MiB) */

#define BOOT_MULTIBOOT  1
#define BOOT_PVH        2
#define MB_BOOT_MAGIC   0x2badb002u
#define PVH_MAGIC       0x336ec578u

/* Xen's public ABI (xen/include/public): hypercall numbers, sub-ops, params */
#define XEN_HC_SCHED_OP         29
#define XEN_HC_EVENT_CHANNEL_OP 32
#define XEN_HC_HVM_OP           34
#define SCHEDOP_yield           0
#define SCHEDOP_shutdown        2
#define SCHEDOP_watchdog        6
#define SHUTDOWN_POWEROFF       0
#define SHUTDOWN_REBOOT         1
#define SHUTDOWN_SUSPEND        2
#define SHUTDOWN_CRASH          3
#define EVTCHNOP_send           4
#define HVMOP_get_param         1
#define HVM_PARAM_STORE_PFN     1
#define HVM_PARAM_STORE_EVTCHN  2
#define HVM_PARAM_CONSOLE_PFN   17
#define HVM_PARAM_CONSOLE_EVTCHN 18
#define DOMID_SELF              0x7ff0u
#define XEN_WATCHDOG_S          2
#define XEN_COM1_POLL_MS        10      /* COM1 input under Xen: an exit each */
#define XS_READ                 2       /* xen/include/public/io/xs_wire.h */
#define XS_WATCH                4
#define XS_WRITE                11
#define XS_WATCH_EVENT          15
#define XS_ERROR                16
#define XS_RPC_TIMEOUT_MS       2000

/* ---------------------------------------------------------------- port I/O */

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static inline uint64_t rdtsc(void)
{
	uint32_t lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((uint64_t)hi << 32) | lo;
}

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3])
			 : "a"(leaf), "c"(sub));
}

/* 64/32 -> 32 division; the caller guarantees the quotient fits. */
static inline uint32_t div64_32(uint64_t n, uint32_t d)
{
	uint32_t q, r;
	__asm__("divl %4" : "=a"(q), "=d"(r) : "a"((uint32_t)n), "d"((uint32_t)(n >> 32)), "rm"(d));
	(void)r;
	return q;
}

static void xen_yield(void);
static uint32_t xen_base;       /* CPUID leaf of "XenVMMXenVMM"; 0 = not Xen */

/* Under Xen a vCPU that halts with interrupts off is taken down, and a
 * domain whose vCPUs are all down is powered off (hvm_hlt): spin there
 * instead, yielding the CPU, so that a hang stays a hang. */
static void __attribute__((noreturn)) halt_forever(void)
{
	for (;;) {
		if (xen_base)
			xen_yield();
		else
			__asm__ volatile("cli; hlt");
	}
}

/* ------------------------------------------------------------------ time */

static uint32_t tsc_per_ms;     /* 0 until calibrated */

static uint16_t pit0_read(void)
{
	uint8_t lo, hi;
	outb(0x43, 0x00);               /* latch channel 0 */
	lo = inb(0x40);
	hi = inb(0x40);
	return (uint16_t)(lo | (hi << 8));
}

/* Measure the TSC against ~20 ms of PIT channel 0 (1.193182 MHz).  Returns
 * 0 if the PIT does not tick (e.g. Xen PVH, which has none).  The TSC is read
 * right after each PIT read inside the loop: under TCG, code first run after
 * the loop would be translated inside the window and bias the result. */
static uint32_t calibrate_pit(void)
{
	const uint32_t target = 23864;  /* 20 ms of PIT ticks */
	uint32_t elapsed = 0, stuck = 0, us;
	uint16_t prev, c, d;
	uint64_t t0, t1;

	outb(0x43, 0x34);               /* ch0, lo/hi byte, mode 2, binary */
	outb(0x40, 0);
	outb(0x40, 0);                  /* reload 65536: wraps every 55 ms */
	prev = pit0_read();
	t0 = t1 = rdtsc();
	while (elapsed < target) {
		c = pit0_read();
		t1 = rdtsc();
		d = (uint16_t)(prev - c);
		if (d == 0) {
			if (++stuck > 10000)    /* a real PIT ticks every 838 ns */
				return 0;
			continue;
		}
		stuck = 0;
		elapsed += d;
		prev = c;
	}
	us = div64_32((uint64_t)elapsed * 838095u, 1000000u);  /* 838.095 ns/tick */
	return div64_32((t1 - t0) * 1000u, us);
}

/* TSC frequency as advertised by a hypervisor, in kHz (= ticks per ms). */
static uint32_t calibrate_cpuid(void)
{
	uint32_t r[4], base;

	cpuid(1, 0, r);
	if (!(r[2] & (1u << 31)))       /* no hypervisor */
		goto leaf16;
	for (base = 0x40000000u; base < 0x40010000u; base += 0x100) {
		cpuid(base, 0, r);
		if (r[1] == 0x566e6558 && r[2] == 0x65584d4d && r[3] == 0x4d4d566e) {
			/* "XenVMMXenVMM": leaf base+3 sub-leaf 0, ECX = TSC kHz */
			if (r[0] >= base + 3) {
				cpuid(base + 3, 0, r);
				if (r[2])
					return r[2];
			}
			break;
		}
		if (r[1] == 0x4b4d564b && r[2] == 0x564b4d56 && r[3] == 0x0000004d) {
			/* "KVMKVMKVM": leaf 0x40000010 EAX = TSC kHz, if offered */
			if (r[0] >= base + 0x10) {
				cpuid(base + 0x10, 0, r);
				if (r[0])
					return r[0];
			}
			break;
		}
	}
leaf16:
	cpuid(0, 0, r);
	if (r[0] >= 0x16) {
		cpuid(0x16, 0, r);
		if (r[0] & 0xffff)
			return (r[0] & 0xffff) * 1000u;  /* base MHz */
	}
	return 0;
}

/* Under Xen, its CPUID leaf first: exact, and probing a PVH guest's missing
 * PIT costs ~2 s of exits under nested TCG before it gives up. */
static void calibrate(void)
{
	uint32_t t = xen_base ? calibrate_cpuid() : 0;

	if (t < 10000)
		t = calibrate_pit();
	if (t < 10000)                  /* < 10 MHz: not believable */
		t = calibrate_cpuid();
	if (t < 10000)
		t = 1000000;            /* guess 1 GHz rather than hang */
	tsc_per_ms = t;
}

/* ------------------------------------------------------------------- Xen */

/* The hypercall page: Xen writes one 32-byte stub per hypercall into it
 * when its guest-physical address goes to the MSR of CPUID leaf base+2.
 * Paging is off, so its link address is its physical address. */
extern uint8_t hypercall_page[4096];
uint8_t hypercall_page[4096] __attribute__((aligned(4096), used));

struct xencons {                /* xen/include/public/io/console.h */
	char in[1024];
	char out[2048];
	uint32_t in_cons, in_prod;
	uint32_t out_cons, out_prod;
};

static volatile struct xencons *xen_cons;       /* NULL: no PV console */
static uint32_t xen_cons_port;
static int xen_cons_stuck;      /* the backend stopped draining: do not wait */
static int32_t xen_wd_id;       /* SCHEDOP_watchdog timer, 0 = none yet */
static int no_uart;             /* under Xen PVH: nothing at 0x3f8 */
static uint32_t xen_hc_msr;     /* MSR that installs the hypercall page */

#define barrier() __asm__ volatile("" : : : "memory")

/* A hypercall of up to two arguments through the page (32-bit ABI: EBX,
 * ECX, ..., result in EAX).  Every argument register is treated as
 * clobbered: a debug Xen scribbles over the ones a hypercall does not use. */
static int32_t hypercall2(uint32_t nr, uint32_t a1, uint32_t a2)
{
	uint32_t entry = (uint32_t)(uintptr_t)hypercall_page + nr * 32;
	uint32_t eax, ebx = a1, ecx = a2, edx = 0, esi = 0, edi = 0;

	__asm__ volatile("call *%[entry]"
			 : "=a"(eax), "+b"(ebx), "+c"(ecx), "+d"(edx), "+S"(esi), "+D"(edi)
			 : [entry] "m"(entry)
			 : "memory", "cc");
	return (int32_t)eax;
}

static void xen_yield(void)
{
	hypercall2(XEN_HC_SCHED_OP, SCHEDOP_yield, 0);
}

static void xen_shutdown(uint32_t reason)
{
	struct { uint32_t reason; } a = { reason };

	hypercall2(XEN_HC_SCHED_OP, SCHEDOP_shutdown, (uint32_t)(uintptr_t)&a);
}

/* Arm (id 0: a new timer, whose id is returned) or feed the domain
 * watchdog; Xen shuts the domain down with SHUTDOWN_watchdog when it runs
 * out. */
static void xen_watchdog(void)
{
	struct { uint32_t id, timeout; } a = { (uint32_t)xen_wd_id, XEN_WATCHDOG_S };
	int32_t r = hypercall2(XEN_HC_SCHED_OP, SCHEDOP_watchdog, (uint32_t)(uintptr_t)&a);

	if (!xen_wd_id && r > 0)
		xen_wd_id = r;
}

static int xen_get_param(uint32_t index, uint64_t *value)
{
	struct {
		uint16_t domid, pad;
		uint32_t index;
		uint64_t value;
	} __attribute__((packed)) a = { DOMID_SELF, 0, index, 0 };

	if (hypercall2(XEN_HC_HVM_OP, HVMOP_get_param, (uint32_t)(uintptr_t)&a) < 0)
		return -1;
	*value = a.value;
	return 0;
}

static void xen_evtchn_send(uint32_t port)
{
	struct { uint32_t port; } a = { port };

	hypercall2(XEN_HC_EVENT_CHANNEL_OP, EVTCHNOP_send, (uint32_t)(uintptr_t)&a);
}

static void xen_notify(void)
{
	struct { uint32_t port; } a = { xen_cons_port };

	hypercall2(XEN_HC_EVENT_CHANNEL_OP, EVTCHNOP_send, (uint32_t)(uintptr_t)&a);
}

static void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

/* Where the PV console is.  Read again at every heartbeat: a domain that
 * was migrated gets a new event channel for it from the toolstack. */
static void xen_console_find(void)
{
	uint64_t pfn, port;

	if (xen_get_param(HVM_PARAM_CONSOLE_PFN, &pfn) == 0 && pfn && pfn < 0x100000u &&
	    xen_get_param(HVM_PARAM_CONSOLE_EVTCHN, &port) == 0 && port) {
		xen_cons_port = (uint32_t)port;
		xen_cons = (volatile struct xencons *)(uintptr_t)((uint32_t)pfn << 12);
	}
}

/* Xen's CPUID leaves, the hypercall page, the PV console.  Leaves
 * xen_base 0 when not under Xen (or when Xen offers no hypercall page). */
static void xen_init(void)
{
	uint32_t r[4], base, msr;

	cpuid(1, 0, r);
	if (!(r[2] & (1u << 31)))       /* no hypervisor */
		return;
	for (base = 0x40000000u; base < 0x40010000u; base += 0x100) {
		cpuid(base, 0, r);
		if (r[1] == 0x566e6558 && r[2] == 0x65584d4d && r[3] == 0x4d4d566e)
			break;          /* "XenVMMXenVMM" (after Viridian's, if on) */
	}
	if (base >= 0x40010000u || r[0] < base + 2)
		return;
	cpuid(base + 2, 0, r);          /* EAX: hypercall pages, EBX: their MSR */
	if (r[0] < 1)
		return;
	msr = r[1];
	xen_hc_msr = msr;
	wrmsr(msr, (uint32_t)(uintptr_t)hypercall_page);        /* page 0 */
	if (!hypercall_page[0])         /* Xen did not fill it */
		return;
	xen_base = base;
	xen_console_find();
	/* HVM has QEMU's UART; PVH has nothing there (reads give all ones).
	 * Polling nothing costs an exit each time: stop. */
	no_uart = inb(COM1 + 5) == 0xff;
}

/* One byte into the console's output ring; the backend is notified at each
 * newline.  When the ring stays full for 20 ms (nothing drains it), output
 * is dropped until there is room again, as with a stuck UART. */
static void xen_cons_putc(char c)
{
	volatile struct xencons *r = xen_cons;
	uint32_t prod = r->out_prod;

	if (prod - r->out_cons >= sizeof(r->out)) {
		uint64_t deadline;

		if (xen_cons_stuck)
			return;
		xen_notify();
		deadline = rdtsc() + (uint64_t)(tsc_per_ms ? tsc_per_ms : 1000000u) * 20;
		while (prod - r->out_cons >= sizeof(r->out)) {
			if (rdtsc() > deadline) {
				xen_cons_stuck = 1;
				return;
			}
		}
	}
	xen_cons_stuck = 0;
	barrier();
	r->out[prod & (sizeof(r->out) - 1)] = c;
	barrier();
	r->out_prod = prod + 1;
	if (c == '\n')
		xen_notify();
}

/* ---------------------------------------------------------------- output */

static int tx_stuck;            /* the UART stopped draining: do not wait */

static void serial_init(void)
{
	outb(COM1 + 1, 0x00);           /* IER: no interrupts */
	outb(COM1 + 3, 0x80);           /* DLAB */
	outb(COM1 + 0, 0x01);           /* 115200 */
	outb(COM1 + 1, 0x00);
	outb(COM1 + 3, 0x03);           /* 8N1 */
	outb(COM1 + 2, 0x07);           /* FIFO on, cleared */
	outb(COM1 + 4, 0x03);           /* DTR | RTS, no loopback */
}

static void putch(char c)
{
	uint8_t lsr;

	if (xen_cons)
		xen_cons_putc(c);
	if (no_uart)
		goto debugcon;
	lsr = inb(COM1 + 5);

	/* 0xff: no UART at all (port unbacked); write blindly. */
	if (lsr != 0xff && !(lsr & 0x20)) {
		if (tx_stuck || !tsc_per_ms) {
			/* before calibration, or after a stall: bounded spin */
			uint32_t i;
			for (i = 0; i < (tx_stuck ? 1u : 200000u); i++)
				if (inb(COM1 + 5) & 0x20)
					break;
			if (!(inb(COM1 + 5) & 0x20)) {
				tx_stuck = 1;
				goto debugcon;
			}
		} else {
			uint64_t deadline = rdtsc() + (uint64_t)tsc_per_ms * 20;
			while (!(inb(COM1 + 5) & 0x20)) {
				if (rdtsc() > deadline) {
					tx_stuck = 1;
					goto debugcon;
				}
			}
		}
	}
	tx_stuck = 0;
	outb(COM1, (uint8_t)c);
debugcon:
	outb(DEBUGCON, (uint8_t)c);
}

static void puts_(const char *s)
{
	while (*s)
		putch(*s++);
}

static void putu(uint32_t v)
{
	char buf[11];
	int i = 10;

	buf[i] = 0;
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	puts_(buf + i);
}

static void putx(uint32_t v)
{
	static const char hex[] = "0123456789abcdef";
	int i;

	puts_("0x");
	for (i = 28; i >= 0; i -= 4)
		putch(hex[(v >> i) & 0xf]);
}

/* Two hex digits: "0x51". */
static void putx8(uint8_t v)
{
	static const char hex[] = "0123456789abcdef";

	puts_("0x");
	putch(hex[v >> 4]);
	putch(hex[v & 0xf]);
}

/* ------------------------------------------------------------ exceptions */

struct idt_entry {
	uint16_t off_lo, sel;
	uint8_t zero, type;
	uint16_t off_hi;
} __attribute__((packed));

static struct idt_entry idt[32];

extern char exc_stubs[], exc_nmi[];

void exception_trap(uint32_t vec) __attribute__((noreturn, used));
void exception_trap(uint32_t vec)
{
	tx_stuck = 0;
	puts_("\nTESTGUEST exception ");
	putu(vec);
	puts_("\n");
	halt_forever();
}

static void idt_init(void)
{
	struct {
		uint16_t limit;
		uint32_t base;
	} __attribute__((packed)) desc;
	uint32_t i, a;

	for (i = 0; i < 32; i++) {
		a = (i == 2) ? (uint32_t)(uintptr_t)exc_nmi
			     : (uint32_t)(uintptr_t)exc_stubs + 16 * i;
		idt[i].off_lo = (uint16_t)a;
		idt[i].sel = 0x08;
		idt[i].zero = 0;
		idt[i].type = 0x8e;     /* present, DPL 0, 32-bit interrupt gate */
		idt[i].off_hi = (uint16_t)(a >> 16);
	}
	desc.limit = sizeof(idt) - 1;
	desc.base = (uint32_t)(uintptr_t)idt;
	__asm__ volatile("lidt %0" : : "m"(desc));
}

/* ---------------------------------------------------------------- memory */

static uint32_t dirty_pages;    /* pages in [DIRTY_BASE, DIRTY_BASE + 4K*n) */

/* Clamp [DIRTY_BASE, top) to the usable RAM region that contains DIRTY_BASE. */
static void note_region(uint64_t base, uint64_t len, uint32_t type)
{
	uint64_t end = base + len;

	if (type != 1 || base > DIRTY_BASE || end <= DIRTY_BASE + PAGE)
		return;
	if (end > DIRTY_TOP_MAX)
		end = DIRTY_TOP_MAX;
	dirty_pages = (uint32_t)(end - DIRTY_BASE) / PAGE;
}

static void mem_init(uint32_t boot, uint32_t magic, uint32_t info)
{
	if (boot == BOOT_MULTIBOOT && magic == MB_BOOT_MAGIC && info) {
		const uint32_t *mbi = (const uint32_t *)(uintptr_t)info;
		uint32_t flags = mbi[0];

		if (flags & (1u << 6)) {        /* mmap_length, mmap_addr */
			uint32_t p = mbi[12], end = mbi[12] + mbi[11];
			while (p + 24 <= end) {
				const uint32_t *e = (const uint32_t *)(uintptr_t)p;
				/* size, base_lo, base_hi, len_lo, len_hi, type */
				note_region(((uint64_t)e[2] << 32) | e[1],
					    ((uint64_t)e[4] << 32) | e[3], e[5]);
				p += e[0] + 4;
			}
		}
		if (!dirty_pages && (flags & 1u))       /* mem_upper: KiB above 1 MiB */
			note_region(0x100000, (uint64_t)mbi[2] * 1024, 1);
	} else if (boot == BOOT_PVH && info &&
		   *(const uint32_t *)(uintptr_t)info == PVH_MAGIC) {
		const uint32_t *si = (const uint32_t *)(uintptr_t)info;
		/* version at +4; v1 adds memmap_paddr (+40) and memmap_entries (+48) */
		if (si[1] >= 1 && si[10] && !si[11]) {
			uint32_t n = si[12], i;
			const uint32_t *e = (const uint32_t *)(uintptr_t)si[10];
			for (i = 0; i < n && i < 128; i++, e += 6)
				note_region(((uint64_t)e[1] << 32) | e[0],
					    ((uint64_t)e[3] << 32) | e[2], e[4]);
		}
	}
	if (!dirty_pages)               /* unknown: assume at least 16 MiB */
		dirty_pages = (0x1000000u - DIRTY_BASE) / PAGE;
}

/* ------------------------------------------------------------------ disk */

static uint32_t disk_writes;    /* `x` commands so far (this boot) */

/* Poll the status register until BSY is clear and all of `need` is set, or
 * ERR/DF is set.  Returns 0 with the status in *st, or -1 after
 * ATA_TIMEOUT_MS.  Only time that passes in small steps counts: a gap of
 * more than 50 ms between two polls means the VM was paused (QEMU stops it
 * on a host I/O error with werror=stop and retries the request on resume),
 * and must not turn into a timeout. */
static int ata_wait(uint8_t need, uint8_t *st)
{
	uint64_t limit = (uint64_t)tsc_per_ms * ATA_TIMEOUT_MS;
	uint64_t gap = (uint64_t)tsc_per_ms * 50;
	uint64_t prev = rdtsc(), now, spent = 0;
	uint8_t s;

	for (;;) {
		s = inb(ATA_STATUS);
		if (!(s & ATA_BSY) && ((s & (ATA_ERR | ATA_DF)) || (s & need) == need)) {
			*st = s;
			return 0;
		}
		now = rdtsc();
		if (now > prev && now - prev < gap)
			spent += now - prev;
		prev = now;
		if (spent > limit) {
			*st = s;
			return -1;
		}
	}
}

static void ata_delay(void)             /* ~400 ns: four alt-status reads */
{
	int i;

	for (i = 0; i < 4; i++)
		(void)inb(ATA_CTRL);
}

static void ata_lba28(uint32_t lba, uint8_t count)
{
	outb(ATA_DRIVE, (uint8_t)(0xe0 | ((lba >> 24) & 0x0f)));  /* LBA, master */
	ata_delay();
	outb(ATA_SECCOUNT, count);
	outb(ATA_LBA0, (uint8_t)lba);
	outb(ATA_LBA1, (uint8_t)(lba >> 8));
	outb(ATA_LBA2, (uint8_t)(lba >> 16));
}

static void disk_result(const char *what, uint8_t st)
{
	puts_("TESTGUEST disk-write ");
	puts_(what);
	puts_(" status=");
	putx8(st);
	puts_("\n");
}

/* IDENTIFY the primary master; returns its LBA28 sector count, 0 if none. */
static uint32_t ata_identify(void)
{
	uint16_t id[256];
	uint8_t st;
	int i;

	if (inb(ATA_STATUS) == 0xff)    /* floating bus: no controller */
		return 0;
	outb(ATA_CTRL, 0x02);           /* nIEN: no IRQ 14 (IF is off anyway) */
	outb(ATA_DRIVE, 0xa0);          /* master */
	ata_delay();
	if (ata_wait(0, &st) < 0)
		return 0;
	ata_lba28(0, 0);
	outb(ATA_DRIVE, 0xa0);
	ata_delay();
	outb(ATA_STATUS, 0xec);         /* IDENTIFY DEVICE */
	ata_delay();
	if (inb(ATA_STATUS) == 0)       /* no drive */
		return 0;
	if (ata_wait(ATA_DRQ, &st) < 0 || (st & (ATA_ERR | ATA_DF)))
		return 0;               /* e.g. ATAPI aborts IDENTIFY DEVICE */
	for (i = 0; i < 256; i++)
		id[i] = inw(ATA_DATA);
	return (uint32_t)id[60] | ((uint32_t)id[61] << 16);
}

/* `x`: write DISK_SECTORS sectors of a pattern at LBA DISK_STRIDE * k (k-th
 * write of this boot, wrapping at the disk size), then CACHE FLUSH.  Sector
 * layout: "TESTGUEST-DISKWR", its own LBA (u32 LE), k (u32 LE), then byte
 * i = i & 0xff for i = 24..511. */
static void disk_write(void)
{
	uint32_t total, lba, slots, s, i;
	uint16_t w;
	uint8_t st;
	static const char tag[] = "TESTGUEST-DISKWR";   /* 16 bytes used */

	puts_("TESTGUEST disk-write\n");
	total = ata_identify();
	if (total > 0x10000000u)        /* LBA28 */
		total = 0x10000000u;
	if (total < DISK_SECTORS) {
		puts_("TESTGUEST disk-write: no disk\n");
		return;
	}
	disk_writes++;
	slots = (total - DISK_SECTORS) / DISK_STRIDE + 1;
	lba = (disk_writes % slots) * DISK_STRIDE;

	ata_lba28(lba, DISK_SECTORS);
	outb(ATA_STATUS, 0x30);         /* WRITE SECTORS */
	ata_delay();
	for (s = 0; s < DISK_SECTORS; s++) {
		if (ata_wait(ATA_DRQ, &st) < 0) {
			disk_result("timeout", st);
			return;
		}
		if (st & (ATA_ERR | ATA_DF)) {
			disk_result("error", st);
			return;
		}
		for (i = 0; i < 512; i += 2) {
			if (i < 16)
				w = (uint16_t)((uint8_t)tag[i] | ((uint8_t)tag[i + 1] << 8));
			else if (i < 20)
				w = (uint16_t)((lba + s) >> ((i - 16) * 8));
			else if (i < 24)
				w = (uint16_t)(disk_writes >> ((i - 20) * 8));
			else
				w = (uint16_t)((i & 0xff) | (((i + 1) & 0xff) << 8));
			outw(ATA_DATA, w);
		}
	}
	ata_delay();
	if (ata_wait(0, &st) < 0) {
		disk_result("timeout", st);
		return;
	}
	if (st & (ATA_ERR | ATA_DF | ATA_DRQ)) {
		disk_result("error", st);
		return;
	}
	outb(ATA_STATUS, 0xe7);         /* CACHE FLUSH */
	ata_delay();
	if (ata_wait(0, &st) < 0) {
		disk_result("timeout", st);
		return;
	}
	if (st & (ATA_ERR | ATA_DF)) {
		disk_result("error", st);
		return;
	}
	puts_("TESTGUEST disk-write ok lba=");
	putu(lba);
	puts_("\n");
}

/* -------------------------------------------------------------- xenstore */

/* A minimal xenstore client, so that the toolstack's requests through
 * control/shutdown work for a PVH guest (libxl asks a PVH guest to suspend
 * there; there is no other way).  The ring and its event channel come from
 * HVM_PARAM_STORE_PFN / _EVTCHN; interrupts stay off, so the response ring
 * is polled: the main loop only compares two indexes (memory reads), and a
 * watch on control/shutdown says when to XS_READ it. */
struct xs_ring {                /* xen/include/public/io/xs_wire.h */
	char req[1024];
	char rsp[1024];
	uint32_t req_cons, req_prod;
	uint32_t rsp_cons, rsp_prod;
	uint32_t server_features, connection, error;
};

struct xsd_sockmsg {
	uint32_t type, req_id, tx_id, len;
};

#define XS_RING_SIZE    1024u
#define XS_PAYLOAD_MAX  4096u
#define XS_HDR          ((uint32_t)sizeof(struct xsd_sockmsg))
static const char xs_shutdown_path[] = "control/shutdown";
static const char xs_watch_args[] = "control/shutdown\0tg";  /* path, token */

static volatile struct xs_ring *xs;     /* NULL: no xenstore */
static uint32_t xs_port;
static uint32_t xs_req_id;
static int xs_watching;         /* the watch is registered */
static int xs_watch_fired;      /* control/shutdown may have changed */
/* The message being read from the response ring: header, payload, NUL. */
static uint8_t xs_in[sizeof(struct xsd_sockmsg) + XS_PAYLOAD_MAX + 1] __attribute__((aligned(4)));
static uint32_t xs_in_have;     /* bytes of it read so far */

static void xs_find(void)
{
	uint64_t pfn, port;

	xs = NULL;
	if (xen_get_param(HVM_PARAM_STORE_PFN, &pfn) == 0 && pfn && pfn < 0x100000u &&
	    xen_get_param(HVM_PARAM_STORE_EVTCHN, &port) == 0 && port) {
		xs_port = (uint32_t)port;
		xs = (volatile struct xs_ring *)(uintptr_t)((uint32_t)pfn << 12);
	}
}

/* Drop whatever is half read or unread in the response ring (after a
 * resume: whatever is there belongs to a conversation that is over). */
static void xs_resync(void)
{
	xs_in_have = 0;
	if (xs && xs->rsp_prod != xs->rsp_cons)
		xs->rsp_cons = xs->rsp_prod;
}

static int xs_streq(const uint8_t *a, const char *b)
{
	while (*b)
		if (*a++ != (uint8_t)*b++)
			return 0;
	return *a == 0;
}

/* Copy n bytes into the request ring, waiting for room until deadline. */
static int xs_put(const void *p, uint32_t n, uint64_t deadline)
{
	const char *c = p;
	uint32_t prod, used;

	while (n) {
		prod = xs->req_prod;
		used = prod - xs->req_cons;
		if (used > XS_RING_SIZE)        /* nonsense indexes */
			return -1;
		if (used == XS_RING_SIZE) {
			if (rdtsc() > deadline)
				return -1;
			xen_yield();
			continue;
		}
		barrier();
		for (; n && used < XS_RING_SIZE; n--, used++)
			xs->req[prod++ & (XS_RING_SIZE - 1)] = *c++;
		barrier();
		xs->req_prod = prod;
	}
	return 0;
}

/* Move what has arrived of the next message into xs_in.  Returns 1 when
 * xs_in holds a whole message (its payload NUL-terminated), else 0. */
static int xs_get(void)
{
	struct xsd_sockmsg *h = (struct xsd_sockmsg *)xs_in;
	uint32_t cons = xs->rsp_cons, prod = xs->rsp_prod, want;

	if (prod - cons > XS_RING_SIZE) {       /* nonsense indexes */
		xs_resync();
		return 0;
	}
	if (xs_in_have >= XS_HDR && xs_in_have == XS_HDR + h->len)
		xs_in_have = 0;                 /* the previous one was handled */
	if (cons == prod)
		return 0;
	barrier();
	for (;;) {
		want = xs_in_have < XS_HDR ? XS_HDR : XS_HDR + h->len;
		if (xs_in_have == want)
			break;
		if (cons == prod)
			break;
		xs_in[xs_in_have++] = (uint8_t)xs->rsp[cons++ & (XS_RING_SIZE - 1)];
		if (xs_in_have == XS_HDR && h->len > XS_PAYLOAD_MAX) {
			xs_resync();            /* cannot be: give up on the rest */
			return 0;
		}
	}
	barrier();
	xs->rsp_cons = cons;
	xen_evtchn_send(xs_port);               /* room in the ring again */
	if (xs_in_have < XS_HDR || xs_in_have < XS_HDR + h->len)
		return 0;
	xs_in[xs_in_have] = 0;
	return 1;
}

/* Main loop: messages that came in unasked (watch events). */
static void xs_poll(void)
{
	while (xs_get())
		if (((struct xsd_sockmsg *)xs_in)->type == XS_WATCH_EVENT)
			xs_watch_fired = 1;
}

/* Send a request (payload = a, then b); returns its req_id, 0 if the ring
 * stayed full. */
static uint32_t xs_send(uint32_t type, const char *a, uint32_t alen, const char *b,
			uint32_t blen, uint64_t deadline)
{
	struct xsd_sockmsg m = { type, ++xs_req_id, 0, alen + blen };

	if (!m.req_id)
		m.req_id = ++xs_req_id;
	if (xs_put(&m, XS_HDR, deadline) || xs_put(a, alen, deadline) ||
	    xs_put(b, blen, deadline))
		return 0;
	xen_evtchn_send(xs_port);
	return m.req_id;
}

/* Send a request and wait for its reply: 0 and the reply's payload in
 * xs_in + XS_HDR, or -1 (XS_ERROR: the errno name is there; or no answer
 * within XS_RPC_TIMEOUT_MS). */
static int xs_rpc(uint32_t type, const char *a, uint32_t alen, const char *b, uint32_t blen)
{
	struct xsd_sockmsg *h = (struct xsd_sockmsg *)xs_in;
	uint64_t deadline = rdtsc() + (uint64_t)tsc_per_ms * XS_RPC_TIMEOUT_MS;
	uint32_t id = xs_send(type, a, alen, b, blen, deadline);

	if (!id)
		return -1;
	for (;;) {
		if (xs_get()) {
			if (h->type == XS_WATCH_EVENT)
				xs_watch_fired = 1;
			else if (h->req_id == id)
				return h->type == XS_ERROR ? -1 : 0;
			continue;               /* a stale reply */
		}
		if (rdtsc() > deadline)
			return -1;
		xen_yield();                    /* let xenstored run */
	}
}

/* Watch control/shutdown (xenstored fires the watch once at once, which
 * reads the node).  EEXIST: this xenstored knows it already (a resume on
 * the same host). */
static void xs_watch(void)
{
	xs_watching = xs_rpc(XS_WATCH, xs_watch_args, sizeof(xs_watch_args), 0, 0) == 0 ||
		      xs_streq(xs_in + XS_HDR, "EEXIST");
}

/* The toolstack's acknowledgement: control/shutdown <- "". */
static void xs_ack(void)
{
	xs_rpc(XS_WRITE, xs_shutdown_path, sizeof(xs_shutdown_path), "", 0);
}

static void xen_resume(void);
static void blk_resume(void);

/* control/shutdown changed: act on "suspend", "poweroff", "halt",
 * "reboot" (anything else, or "", is left alone). */
static void xs_check_shutdown(void)
{
	const uint8_t *v = xs_in + XS_HDR;

	xs_watch_fired = 0;
	if (xs_rpc(XS_READ, xs_shutdown_path, sizeof(xs_shutdown_path), 0, 0) < 0)
		return;                         /* ENOENT: nothing asked */
	if (xs_streq(v, "suspend")) {
		puts_("TESTGUEST suspend\n");
		/* The acknowledgement, without waiting for xenstored's reply (a
		 * round trip through dom0, i.e. downtime): the request is in
		 * the ring, xenstored acts on it even while the domain is
		 * paused, and libxl waits for it before it waits for the
		 * suspend.  The reply is dropped on resume (xs_resync). */
		xs_send(XS_WRITE, xs_shutdown_path, sizeof(xs_shutdown_path), "", 0,
			rdtsc() + (uint64_t)tsc_per_ms * XS_RPC_TIMEOUT_MS);
		/* Xen pauses the domain here; the toolstack saves it.  The call
		 * returns when it runs again: here after a cancelled suspend,
		 * or restored somewhere else. */
		xen_shutdown(SHUTDOWN_SUSPEND);
		xen_resume();
	} else if (xs_streq(v, "poweroff") || xs_streq(v, "halt")) {
		puts_("TESTGUEST poweroff\n");
		xs_ack();
		xen_shutdown(SHUTDOWN_POWEROFF);
		halt_forever();
	} else if (xs_streq(v, "reboot")) {
		puts_("TESTGUEST reboot\n");
		xs_ack();
		xen_shutdown(SHUTDOWN_REBOOT);
		halt_forever();
	}
}

/* After SHUTDOWN_suspend returned: a restored domain has new event
 * channels (console, xenstore) and a xenstored that knows nothing of our
 * watch.  The hypercall page is filled again in case the CPU vendor
 * changed (VMCALL vs VMMCALL). */
static void xen_resume(void)
{
	wrmsr(xen_hc_msr, (uint32_t)(uintptr_t)hypercall_page);
	xen_cons_stuck = 0;
	xen_console_find();
	xs_find();
	xs_resync();
	xs_watching = 0;
	if (xs)
		xs_watch();
	puts_("TESTGUEST resumed\n");
	blk_resume();
}

/* -------------------------------------------------------------- blkfront */

/* A Xen PV block frontend for the first vbd (device/vbd/<id> in xenstore),
 * for the numbered-write test: `x` writes the next sequence record, `W`
 * writes one at every heartbeat, `S` stops.  Synchronous: one request at a
 * time, the response ring polled (no interrupts), every wait bounded by
 * time that passes in small steps (gaps > 50 ms, a paused or migrated
 * domain, do not count).  Pages: grant table frame 0 mapped over a .bss
 * page (XENMEM_add_to_physmap), one ring page and BLK_SEGS data pages,
 * granted to the backend at fixed references.  The ring is the x86_32 ABI
 * (protocol "x86_32-abi"), which is what gcc -m32 lays out natively. */
#define XEN_HC_MEMORY_OP        12
#define XENMEM_add_to_physmap   7
#define XENMAPSPACE_grant_table 1
#define EVTCHNOP_alloc_unbound  6
#define XS_DIRECTORY            1
#define GTF_permit_access       1
#define BLKIF_OP_READ           0
#define BLKIF_OP_WRITE          1
#define BLKIF_OP_WRITE_BARRIER  2
#define BLKIF_OP_FLUSH_DISKCACHE 3
#define BLK_SEGS                11      /* BLKIF_MAX_SEGMENTS_PER_REQUEST */
#define BLK_RING_SIZE           32      /* (4096 - 64) / 108, power of 2 below */
#define GREF_RING               8       /* 0..7 are the toolstack's */
#define GREF_DATA               9       /* 9 .. 9 + BLK_SEGS - 1 */
#define XB_INITWAIT             2       /* xen/include/public/io/xenbus.h */
#define XB_INITIALISED          3
#define XB_CONNECTED            4
#define XB_CLOSING              5
#define BLK_IO_TIMEOUT_MS       10000
#define BLK_CONNECT_TIMEOUT_MS  30000
#define BLK_ST_TIMEOUT          (-100)  /* no response in time */
#define BLK_ST_NODEV            (-101)  /* not connected, and could not connect */
#define BLK_ST_LOST             (-102)  /* the backend went away (new domain) */
#define BLK_ST_FULL             (-103)  /* past the end of the disk */
#define SEQ_BASE_LBA            2048u   /* record of seq n at LBA 2048 + n */
#define SEQ_MAGIC               "HAGENT-SEQ"

struct blkif_seg {
	uint32_t gref;
	uint8_t first_sect, last_sect;
	uint16_t pad;
};

struct blkif_req {              /* 108 bytes: uint64_t is 4-aligned on i386 */
	uint8_t op, nr_segments;
	uint16_t handle;
	uint64_t id;
	uint64_t sector;
	struct blkif_seg seg[BLK_SEGS];
};

struct blkif_rsp {
	uint64_t id;
	uint8_t op, pad;
	int16_t status;
};

union blkif_entry {
	struct blkif_req req;
	struct blkif_rsp rsp;
};

struct blkif_sring {
	uint32_t req_prod, req_event, rsp_prod, rsp_event;
	uint8_t pad[48];
	union blkif_entry ring[BLK_RING_SIZE];
};

struct gnttab_v1 {
	uint16_t flags, domid;
	uint32_t frame;
};

_Static_assert(sizeof(struct blkif_req) == 108, "blkif x86_32 request layout");
_Static_assert(sizeof(struct blkif_rsp) == 12, "blkif x86_32 response layout");
_Static_assert(sizeof(struct blkif_sring) <= 4096, "blkif ring fits a page");

/* The grant table's frame 0 replaces this page (its RAM goes back to Xen). */
static uint8_t blk_gnttab_page[4096] __attribute__((aligned(4096)));
static uint8_t blk_ring_page[4096] __attribute__((aligned(4096)));
static uint8_t blk_data[BLK_SEGS][4096] __attribute__((aligned(4096)));

static int blk_present;         /* device/vbd/<id> exists */
static int blk_connected;       /* ring connected to the current backend */
static uint32_t blk_id;         /* vbd id (virtual device number) */
static char blk_fe[32];         /* "device/vbd/<id>" */
static char blk_be[128];        /* the backend's directory */
static uint32_t blk_beid;       /* backend domid */
static uint32_t blk_port;       /* our event channel to it */
static uint32_t blk_sectors;    /* 512-byte sectors (clamped to 32 bits) */
static int blk_flush;           /* BLKIF_OP_FLUSH_DISKCACHE, _WRITE_BARRIER, or -1 */
static uint32_t blk_rsp_cons;
static uint32_t blk_req_id;
static uint32_t blk_gen;        /* connections so far (a new one: a new backend) */
static uint32_t blk_done_gen;   /* the connection the last request completed on */
static int blk_hvm;             /* HVM: suspended without being told */

static uint32_t seq_last;       /* last sequence number on disk */
static uint32_t seq_boot;       /* boot count stored in the records */
static int seq_scanned;         /* seq_last is known */
static int seq_cont;            /* `W`: one write per heartbeat */
static uint32_t hb_count;

/* Time that passes in small steps (< 50 ms between two looks): a domain
 * that was paused, saved or migrated in between does not time out. */
struct tg_wait {
	uint64_t prev, spent, limit, gap;
	uint32_t gaps;
};

static void wait_start(struct tg_wait *w, uint32_t ms)
{
	w->prev = rdtsc();
	w->spent = 0;
	w->limit = (uint64_t)tsc_per_ms * ms;
	w->gap = (uint64_t)tsc_per_ms * 50;
	w->gaps = 0;
}

static int wait_over(struct tg_wait *w)
{
	uint64_t now = rdtsc();

	if (now > w->prev && now - w->prev < w->gap)
		w->spent += now - w->prev;
	else
		w->gaps++;
	w->prev = now;
	return w->spent > w->limit;
}

static void sleep_ms(uint32_t ms)
{
	uint64_t end = rdtsc() + (uint64_t)tsc_per_ms * ms;

	while (rdtsc() < end)
		xen_yield();
}

static uint32_t slen(const char *s)
{
	uint32_t n = 0;

	while (s[n])
		n++;
	return n;
}

/* dst <- a "/" b (b may be NULL: just a), NUL-terminated, truncated. */
static char *path_join(char *dst, uint32_t size, const char *a, const char *b)
{
	uint32_t n = 0;

	while (*a && n + 1 < size)
		dst[n++] = *a++;
	if (b) {
		if (n + 1 < size)
			dst[n++] = '/';
		while (*b && n + 1 < size)
			dst[n++] = *b++;
	}
	dst[n] = 0;
	return dst;
}

static void utoa(char *buf, uint32_t v)        /* buf: 11 bytes */
{
	char t[11];
	int i = 10, j = 0;

	t[i] = 0;
	do {
		t[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while ((buf[j++] = t[i++]))
		;
}

/* Decimal, clamped to 32 bits; -1 if none. */
static int parse_u32(const uint8_t *s, uint32_t *v)
{
	uint64_t n = 0;

	if (*s < '0' || *s > '9')
		return -1;
	while (*s >= '0' && *s <= '9') {
		n = n * 10 + (uint32_t)(*s++ - '0');
		if (n > 0xffffffffu)
			n = 0xffffffffu;
	}
	*v = (uint32_t)n;
	return 0;
}

static char xs_path[160];

/* XS_READ of dir/leaf: the value (NUL-terminated, in xs_in), or NULL. */
static const uint8_t *xs_read2(const char *dir, const char *leaf)
{
	path_join(xs_path, sizeof(xs_path), dir, leaf);
	if (!xs || xs_rpc(XS_READ, xs_path, slen(xs_path) + 1, 0, 0) < 0)
		return NULL;
	return xs_in + XS_HDR;
}

static int xs_read2_u32(const char *dir, const char *leaf, uint32_t *v)
{
	const uint8_t *s = xs_read2(dir, leaf);

	return s ? parse_u32(s, v) : -1;
}

static int xs_write2(const char *dir, const char *leaf, const char *value)
{
	path_join(xs_path, sizeof(xs_path), dir, leaf);
	if (!xs)
		return -1;
	return xs_rpc(XS_WRITE, xs_path, slen(xs_path) + 1, value, slen(value));
}

static int xs_write2_u32(const char *dir, const char *leaf, uint32_t v)
{
	char buf[11];

	utoa(buf, v);
	return xs_write2(dir, leaf, buf);
}

/* Wait until the backend's state is at least `want` (and not closing). */
static int blk_wait_backend(uint32_t want, uint32_t *state)
{
	struct tg_wait w;

	wait_start(&w, BLK_CONNECT_TIMEOUT_MS);
	for (;;) {
		if (xs_read2_u32(blk_be, "state", state) == 0) {
			if (*state >= XB_CLOSING)
				return -1;
			if (*state >= want)
				return 0;
		}
		if (wait_over(&w))
			return -1;
		sleep_ms(5);
	}
}

static int blk_map_gnttab(void)
{
	struct {
		uint16_t domid, size;
		uint32_t space, idx, gpfn;
	} a = { DOMID_SELF, 0, XENMAPSPACE_grant_table, 0,
		(uint32_t)(uintptr_t)blk_gnttab_page >> 12 };

	return hypercall2(XEN_HC_MEMORY_OP, XENMEM_add_to_physmap, (uint32_t)(uintptr_t)&a);
}

static void blk_grant(uint32_t ref, const void *page)
{
	volatile struct gnttab_v1 *g = (volatile struct gnttab_v1 *)blk_gnttab_page + ref;

	g->flags = 0;
	barrier();
	g->domid = (uint16_t)blk_beid;
	g->frame = (uint32_t)(uintptr_t)page >> 12;
	barrier();
	g->flags = GTF_permit_access;
}

static int blk_alloc_evtchn(void)
{
	struct {
		uint16_t dom, remote_dom;
		uint32_t port;
	} a = { DOMID_SELF, (uint16_t)blk_beid, 0 };
	int32_t rc = hypercall2(XEN_HC_EVENT_CHANNEL_OP, EVTCHNOP_alloc_unbound,
				(uint32_t)(uintptr_t)&a);

	if (rc < 0)
		return rc;
	blk_port = a.port;
	return 0;
}

/* "TESTGUEST vbd <id> connect failed: <why>[ <key>=<v>]" */
static void blk_fail(const char *why, const char *key, int32_t v)
{
	puts_("TESTGUEST vbd ");
	putu(blk_id);
	puts_(" connect failed: ");
	puts_(why);
	if (key) {
		puts_(" ");
		puts_(key);
		puts_("=");
		if (v < 0)
			puts_("-");
		putu(v < 0 ? (uint32_t)-v : (uint32_t)v);
	}
	puts_("\n");
}

/* The xenbus dance with the (current) backend: wait for it to be ready
 * (InitWait), grant the pages, allocate the event channel, publish
 * ring-ref / event-channel / protocol and Initialised, wait for Connected,
 * read the disk's size and features, and say Connected.  Prints one line
 * "TESTGUEST vbd <id> <what> ...". */
static int blk_connect(const char *what)
{
	volatile struct blkif_sring *s = (volatile struct blkif_sring *)blk_ring_page;
	const uint8_t *v;
	uint32_t state = 0, ssize = 512, i, n = 0;
	int32_t rc;

	blk_connected = 0;
	if (!xs)
		return -1;
	v = xs_read2(blk_fe, "backend");
	if (!v) {
		blk_fail("no backend path", NULL, 0);
		return -1;
	}
	for (n = 0; v[n] && n + 1 < sizeof(blk_be); n++)
		blk_be[n] = (char)v[n];
	blk_be[n] = 0;
	if (xs_read2_u32(blk_fe, "backend-id", &blk_beid) < 0)
		blk_beid = 0;
	if (blk_wait_backend(XB_INITWAIT, &state) < 0) {
		blk_fail("backend not ready", "state", (int32_t)state);
		return -1;
	}
	rc = blk_map_gnttab();
	if (rc < 0) {
		blk_fail("grant table", "rc", rc);
		return -1;
	}
	for (i = 0; i < sizeof(blk_ring_page); i++)
		blk_ring_page[i] = 0;
	s->req_event = 1;               /* SHARED_RING_INIT */
	s->rsp_event = 1;
	blk_rsp_cons = 0;
	blk_grant(GREF_RING, blk_ring_page);
	for (i = 0; i < BLK_SEGS; i++)
		blk_grant(GREF_DATA + i, blk_data[i]);
	rc = blk_alloc_evtchn();
	if (rc < 0) {
		blk_fail("event channel", "rc", rc);
		return -1;
	}
	if (xs_write2_u32(blk_fe, "ring-ref", GREF_RING) < 0 ||
	    xs_write2_u32(blk_fe, "event-channel", blk_port) < 0 ||
	    xs_write2(blk_fe, "protocol", "x86_32-abi") < 0 ||
	    xs_write2_u32(blk_fe, "state", XB_INITIALISED) < 0) {
		blk_fail("xenstore write", NULL, 0);
		return -1;
	}
	if (blk_wait_backend(XB_CONNECTED, &state) < 0) {
		blk_fail("backend did not connect", "state", (int32_t)state);
		return -1;
	}
	if (xs_read2_u32(blk_be, "sectors", &blk_sectors) < 0)
		blk_sectors = 0;
	if (xs_read2_u32(blk_be, "sector-size", &ssize) < 0)
		ssize = 512;
	if (xs_read2_u32(blk_be, "feature-flush-cache", &n) == 0 && n)
		blk_flush = BLKIF_OP_FLUSH_DISKCACHE;
	else if (xs_read2_u32(blk_be, "feature-barrier", &n) == 0 && n)
		blk_flush = BLKIF_OP_WRITE_BARRIER;
	else
		blk_flush = -1;
	if (ssize != 512) {
		blk_fail("unsupported", "sector-size", (int32_t)ssize);
		return -1;
	}
	if (xs_write2_u32(blk_fe, "state", XB_CONNECTED) < 0) {
		blk_fail("xenstore write", NULL, 0);
		return -1;
	}
	blk_connected = 1;
	blk_gen++;
	puts_("TESTGUEST vbd ");
	putu(blk_id);
	puts_(" ");
	puts_(what);
	puts_(" backend=");
	puts_(blk_be);
	puts_(" evtchn:");
	putu(blk_port);
	puts_(" sectors=");
	putu(blk_sectors);
	puts_(blk_flush == BLKIF_OP_FLUSH_DISKCACHE ? " flush=flush\n" :
	      blk_flush == BLKIF_OP_WRITE_BARRIER ? " flush=barrier\n" : " flush=none\n");
	return 0;
}

/* Is our connection gone?  After a restore (a new domain: its frontend
 * node was written afresh, state Initialising) the backend we talked to is
 * no more.  The xenstore parameters are read again first: a non-cooperative
 * (HVM) restore gives xenstore a new event channel without telling us. */
static int blk_lost(void)
{
	uint32_t state = 0;

	xs_find();
	if (xs_read2_u32(blk_fe, "state", &state) < 0)
		return 0;               /* cannot tell: assume not */
	return state != XB_CONNECTED;
}

/* One request on the current connection; returns the backend's status
 * (0 = OK), BLK_ST_TIMEOUT, or BLK_ST_LOST when a gap in time (paused?)
 * was followed by finding the connection gone. */
static int blk_request(uint8_t op, uint32_t lba, uint32_t nsect)
{
	volatile struct blkif_sring *s = (volatile struct blkif_sring *)blk_ring_page;
	volatile struct blkif_req *r;
	struct tg_wait w;
	uint32_t id = ++blk_req_id, prod = s->req_prod, npages, i, gaps = 0;

	r = &s->ring[prod % BLK_RING_SIZE].req;
	npages = (nsect + 7) / 8;
	r->op = op;
	r->nr_segments = (uint8_t)npages;
	r->handle = (uint16_t)blk_id;
	r->id = id;
	r->sector = lba;
	for (i = 0; i < npages; i++) {
		r->seg[i].gref = GREF_DATA + i;
		r->seg[i].first_sect = 0;
		r->seg[i].last_sect = (uint8_t)(i + 1 < npages ? 7 : (nsect - 1) % 8);
		r->seg[i].pad = 0;
	}
	barrier();
	s->req_prod = prod + 1;
	barrier();
	xen_evtchn_send(blk_port);
	wait_start(&w, BLK_IO_TIMEOUT_MS);
	for (;;) {
		while (blk_rsp_cons != s->rsp_prod) {
			volatile struct blkif_rsp *p;
			uint32_t rid;
			int16_t st;

			barrier();
			p = &s->ring[blk_rsp_cons % BLK_RING_SIZE].rsp;
			rid = (uint32_t)p->id;
			st = p->status;
			blk_rsp_cons++;
			s->rsp_event = blk_rsp_cons + 1;
			if (rid == id) {
				blk_done_gen = blk_gen;
				return st;
			}
		}
		if (wait_over(&w))
			return BLK_ST_TIMEOUT;
		if (w.gaps != gaps) {   /* paused, maybe saved and restored */
			gaps = w.gaps;
			if (blk_lost())
				return BLK_ST_LOST;
		}
		xen_yield();
	}
}

/* A request, reconnecting (to a new backend) and retrying when the
 * connection turns out to be gone.  The data pages are ours: a retry sends
 * the same data. */
static int blk_io(uint8_t op, uint32_t lba, uint32_t nsect)
{
	int tries, st = BLK_ST_NODEV;

	for (tries = 0; tries < 3; tries++) {
		if (!blk_connected && blk_connect("reconnected") < 0)
			return BLK_ST_NODEV;
		st = blk_request(op, lba, nsect);
		if (st == BLK_ST_LOST || (st == BLK_ST_TIMEOUT && blk_lost())) {
			blk_connected = 0;
			st = BLK_ST_LOST;
			continue;
		}
		return st;
	}
	return st;
}

static void put_status(int st)
{
	switch (st) {
	case BLK_ST_TIMEOUT:
		puts_("timeout");
		break;
	case BLK_ST_NODEV:
		puts_("disconnected");
		break;
	case BLK_ST_LOST:
		puts_("lost");
		break;
	case BLK_ST_FULL:
		puts_("full");
		break;
	default:
		if (st < 0) {
			puts_("-");
			putu((uint32_t)-st);
		} else {
			putu((uint32_t)st);
		}
	}
}

/* FNV-1a, 32 bits. */
static uint32_t fnv1a(const uint8_t *p, uint32_t n)
{
	uint32_t h = 2166136261u;

	while (n--)
		h = (h ^ *p++) * 16777619u;
	return h;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* The record of sequence number `seq` (README): magic "HAGENT-SEQ" padded
 * with NULs to 16 bytes, seq (u64 LE), boot count (u32 LE), heartbeat
 * number (u32 LE), bytes 32..507 = (seq + i) & 0xff, FNV-1a of bytes
 * 0..507 (u32 LE). */
static void seq_record(uint8_t *p, uint32_t seq)
{
	static const char magic[] = SEQ_MAGIC;
	uint32_t i;

	for (i = 0; i < 16; i++)
		p[i] = (uint8_t)(i < sizeof(magic) - 1 ? magic[i] : 0);
	put_le32(p + 16, seq);
	put_le32(p + 20, 0);
	put_le32(p + 24, seq_boot);
	put_le32(p + 28, hb_count);
	for (i = 32; i < 508; i++)
		p[i] = (uint8_t)(seq + i);
	put_le32(p + 508, fnv1a(p, 508));
}

/* A valid record of `seq`?  *boot gets its boot count. */
static int seq_valid(const uint8_t *p, uint32_t seq, uint32_t *boot)
{
	static const char magic[] = SEQ_MAGIC;
	uint32_t i;

	for (i = 0; i < 16; i++)
		if (p[i] != (uint8_t)(i < sizeof(magic) - 1 ? magic[i] : 0))
			return 0;
	if (get_le32(p + 16) != seq || get_le32(p + 20) != 0 ||
	    get_le32(p + 508) != fnv1a(p, 508))
		return 0;
	*boot = get_le32(p + 24);
	return 1;
}

/* Find the last record: read seq 1, 2, ... (88 sectors per request) until
 * one is not a valid record of its number.  The records written from now
 * on carry boot count = the largest found + 1. */
static int seq_scan(void)
{
	uint32_t lba = SEQ_BASE_LBA + 1, seq = 0, boot, maxboot = 0, n, k;
	int st;

	for (;;) {
		if (lba >= blk_sectors)
			break;
		n = blk_sectors - lba;
		if (n > BLK_SEGS * 8)
			n = BLK_SEGS * 8;
		st = blk_io(BLKIF_OP_READ, lba, n);
		if (st) {
			puts_("TESTGUEST disk scan error status=");
			put_status(st);
			puts_("\n");
			return -1;
		}
		for (k = 0; k < n; k++) {
			if (!seq_valid(blk_data[k / 8] + (k % 8) * 512, seq + 1, &boot))
				goto done;
			seq++;
			if (boot > maxboot)
				maxboot = boot;
		}
		lba += n;
	}
done:
	seq_last = seq;
	seq_boot = maxboot + 1;
	seq_scanned = 1;
	puts_("TESTGUEST disk seq=");
	putu(seq_last);
	puts_("\n");
	return 0;
}

/* Write the next record, then flush; acknowledged only when the backend
 * that completed the flush is the one that completed the write (after a
 * reconnect in between, both are done again on the new backend). */
static void seq_write(void)
{
	uint32_t seq, lba, wgen;
	int st = 0, tries;

	if (!blk_present) {
		puts_("TESTGUEST disk-write: no disk\n");
		seq_cont = 0;
		return;
	}
	if (!seq_scanned && seq_scan() < 0) {           /* not connected at boot */
		puts_("TESTGUEST disk-write error seq=");
		putu(seq_last + 1);
		puts_(" status=disconnected\n");
		seq_cont = 0;
		return;
	}
	/* An HVM guest is saved and restored without being asked (libxl sees
	 * no PV drivers): is this still the domain that connected?  One
	 * XS_READ per write.  (A request in flight across such a restore
	 * times out, then finds the connection gone and is retried.) */
	if (blk_hvm && blk_connected && blk_lost())
		blk_connected = 0;
	seq = seq_last + 1;
	lba = SEQ_BASE_LBA + seq;
	if (lba >= blk_sectors) {
		st = BLK_ST_FULL;
		goto out;
	}
	for (tries = 0; tries < 3; tries++) {
		seq_record(blk_data[0], seq);
		st = blk_io(blk_flush == BLKIF_OP_WRITE_BARRIER ? BLKIF_OP_WRITE_BARRIER
								 : BLKIF_OP_WRITE, lba, 1);
		if (st || blk_flush != BLKIF_OP_FLUSH_DISKCACHE)
			break;
		wgen = blk_done_gen;
		st = blk_io(BLKIF_OP_FLUSH_DISKCACHE, 0, 0);
		if (st || blk_done_gen == wgen)
			break;
		st = BLK_ST_LOST;       /* flushed by another backend: again */
	}
out:
	if (st) {
		puts_("TESTGUEST disk-write error seq=");
		putu(seq);
		puts_(" status=");
		put_status(st);
		puts_("\n");
		seq_cont = 0;
		return;
	}
	seq_last = seq;
	puts_("TESTGUEST disk-write ok seq=");
	putu(seq);
	puts_("\n");
}

/* At boot: the first vbd (lowest id) in device/vbd, if any; connect and
 * find the last record. */
static void blk_probe(void)
{
	const uint8_t *p, *end;
	uint32_t id, best = 0xffffffffu;

	if (!xs || xs_rpc(XS_DIRECTORY, "device/vbd", sizeof("device/vbd"), 0, 0) < 0 ||
	    !((struct xsd_sockmsg *)xs_in)->len) {
		puts_("TESTGUEST vbd none\n");
		return;
	}
	p = xs_in + XS_HDR;
	end = p + ((struct xsd_sockmsg *)xs_in)->len;
	while (p < end) {
		if (parse_u32(p, &id) == 0 && id < best)
			best = id;
		while (p < end && *p)
			p++;
		p++;
	}
	if (best == 0xffffffffu) {
		puts_("TESTGUEST vbd none\n");
		return;
	}
	blk_id = best;
	blk_present = 1;
	utoa(xs_path, blk_id);
	path_join(blk_fe, sizeof(blk_fe), "device/vbd", xs_path);
	if (blk_connect("connected") == 0)
		seq_scan();
}

/* After a suspend returned: still connected (cancelled suspend, same
 * backend), or a new domain whose new backend waits for us. */
static void blk_resume(void)
{
	if (!blk_present)
		return;
	if (blk_connected && !blk_lost()) {
		puts_("TESTGUEST vbd ");
		putu(blk_id);
		puts_(" kept\n");
		return;
	}
	blk_connect("reconnected");
}

/* ------------------------------------------------------------ the guest */

static uint32_t dirty_rate;     /* MiB/s */
static uint32_t dirty_acc;      /* remainder of pages * 100 */
static uint32_t dirty_budget;   /* pages owed */
static uint32_t dirty_cursor;
static uint32_t dirty_seq;
static uint64_t next_dirty_tick;

static int wd_feed;
static int d_pending;
static uint32_t d_arg;

static void set_dirty(uint32_t mibs)
{
	if (mibs > DIRTY_MAX_MIBS)
		mibs = DIRTY_MAX_MIBS;
	dirty_rate = mibs;
	dirty_acc = 0;
	dirty_budget = 0;
	next_dirty_tick = rdtsc() + (uint64_t)tsc_per_ms * DIRTY_TICK_MS;
	puts_("TESTGUEST dirty ");
	putu(mibs);
	puts_("\n");
}

static void dirty_step(uint64_t now)
{
	uint32_t n;

	if (!dirty_rate)
		return;
	if (next_dirty_tick > now + (uint64_t)tsc_per_ms * 1000)  /* TSC went back */
		next_dirty_tick = now;
	/* Credit every 10 ms tick that has passed (the vCPU may not have run
	 * for a while), owing at most 1 s of writes; resync after a longer gap. */
	for (n = 0; now >= next_dirty_tick; n++) {
		uint32_t per_s = dirty_rate * (1024u * 1024u / PAGE);

		if (n == 1000u / DIRTY_TICK_MS) {       /* paused? start afresh */
			next_dirty_tick = now + (uint64_t)tsc_per_ms * DIRTY_TICK_MS;
			break;
		}
		dirty_acc += per_s;
		dirty_budget += dirty_acc / (1000u / DIRTY_TICK_MS);
		dirty_acc %= 1000u / DIRTY_TICK_MS;
		if (dirty_budget > per_s)
			dirty_budget = per_s;
		next_dirty_tick += (uint64_t)tsc_per_ms * DIRTY_TICK_MS;
	}
	for (n = 0; n < 256 && dirty_budget; n++, dirty_budget--) {
		volatile uint32_t *p = (volatile uint32_t *)(uintptr_t)
			(DIRTY_BASE + dirty_cursor * PAGE + ((dirty_seq & 63) << 6));
		*p = ++dirty_seq;
		if (++dirty_cursor >= dirty_pages)
			dirty_cursor = 0;
	}
}

static void do_reboot(void)
{
	uint64_t t;

	outb(RESET_CTRL, 0x06);
	t = rdtsc() + (uint64_t)tsc_per_ms * 100;
	while (rdtsc() < t)
		;
	outb(0x64, 0xfe);               /* fallback: keyboard controller reset */
	halt_forever();
}

/* ib700 at 2 s, or Xen's domain watchdog at 2 s (SHUTDOWN_watchdog). */
static void watchdog_arm(void)
{
	if (xen_base)
		xen_watchdog();
	else
		outb(IB700_ARM, IB700_2S);
}

static void command(char c)
{
	if (d_pending) {
		if (c >= '0' && c <= '9') {
			if (d_arg < DIRTY_MAX_MIBS)
				d_arg = d_arg * 10 + (uint32_t)(c - '0');
			return;
		}
		d_pending = 0;
		set_dirty(d_arg);
		/* anything else ends the number, and is then a command itself */
	}
	switch (c) {
	case 'p':
		puts_("TESTGUEST panic\n");
		if (xen_base)
			xen_shutdown(SHUTDOWN_CRASH);
		else
			outb(PVPANIC, 1);
		halt_forever();
	case 'o':
		puts_("TESTGUEST poweroff\n");
		if (xen_base)
			xen_shutdown(SHUTDOWN_POWEROFF);
		else
			outw(ACPI_PM1A_CNT, 0x2000);
		halt_forever();
	case 'r':
		puts_("TESTGUEST reboot\n");
		if (xen_base) {
			xen_shutdown(SHUTDOWN_REBOOT);
			halt_forever();
		}
		do_reboot();
		break;
	case 'h':
		puts_("TESTGUEST hang\n");
		halt_forever();
	case 'w':
		puts_("TESTGUEST watchdog\n");
		watchdog_arm();
		wd_feed = 0;
		break;
	case 'f':
		puts_("TESTGUEST watchdog-fed\n");
		watchdog_arm();
		wd_feed = 1;
		break;
	case 'd':
		d_pending = 1;
		d_arg = 0;
		break;
	case 'e':
		puts_("TESTGUEST echo\n");
		break;
	case 'x':
		if (blk_present) {             /* Xen, with a vbd */
			puts_("TESTGUEST disk-write\n");
			seq_write();
		} else {
			disk_write();           /* ATA PIO */
		}
		break;
	case 'W':
		if (!blk_present) {
			puts_("TESTGUEST disk-write: no disk\n");
			break;
		}
		puts_("TESTGUEST disk-writes on\n");
		seq_cont = 1;
		break;
	case 'S':
		puts_("TESTGUEST disk-writes off\n");
		seq_cont = 0;
		break;
	default:                        /* newlines, spaces, noise: ignored */
		break;
	}
}

/* Up to 16 bytes of the PV console's input ring. */
static void xen_cons_poll(void)
{
	volatile struct xencons *r = xen_cons;
	uint32_t cons = r->in_cons, prod = r->in_prod;
	int i;

	if (cons == prod)
		return;
	barrier();
	for (i = 0; i < 16 && cons != prod; i++) {
		char c = r->in[cons & (sizeof(r->in) - 1)];

		barrier();
		r->in_cons = ++cons;
		command(c);
	}
	xen_notify();                   /* room in the ring again */
}

static uint64_t next_com1_poll;

static void poll_input(uint64_t now)
{
	int i;
	uint8_t lsr;

	if (xen_base) {
		if (xen_cons)
			xen_cons_poll();
		if (xs && xs->rsp_prod != xs->rsp_cons)   /* memory reads only */
			xs_poll();
		if (xs_watch_fired)
			xs_check_shutdown();
		/* each COM1 read is a round trip to QEMU in dom0 under HVM */
		if (no_uart || now < next_com1_poll)
			return;
		next_com1_poll = now + (uint64_t)tsc_per_ms * XEN_COM1_POLL_MS;
	}
	for (i = 0; i < 16; i++) {
		lsr = inb(COM1 + 5);
		if (lsr == 0xff || !(lsr & 0x01))
			return;
		command((char)inb(COM1));
	}
}

void kmain(uint32_t boot, uint32_t magic, uint32_t info) __attribute__((noreturn, used));
void kmain(uint32_t boot, uint32_t magic, uint32_t info)
{
	uint64_t now, next_hb, period;

	idt_init();
	outb(0x21, 0xff);               /* mask both PICs (IF is off anyway) */
	outb(0xa1, 0xff);
	serial_init();
	xen_init();
	puts_("TESTGUEST boot\n");
	mem_init(boot, magic, info);
	calibrate();
	if (boot != BOOT_MULTIBOOT) {
		puts_("TESTGUEST pvh tsc_khz=");
		putu(tsc_per_ms);
		puts_(" dirty_buf=");
		putx(dirty_pages * PAGE);
		puts_("\n");
	}
	if (xen_base) {
		uint32_t r[4];

		cpuid(xen_base + 1, 0, r);      /* EAX: major << 16 | minor */
		puts_("TESTGUEST xen ");
		putu(r[0] >> 16);
		puts_(".");
		putu(r[0] & 0xffff);
		puts_(boot == BOOT_MULTIBOOT ? " hvm" : " pvh");
		puts_(" console=");
		if (xen_cons) {
			puts_("evtchn:");
			putu(xen_cons_port);
		} else {
			puts_("none");
		}
		puts_(no_uart ? " com1=none\n" : " com1=yes\n");
		xs_find();
		puts_("TESTGUEST xenstore ");
		if (xs) {
			xs_watch();
			puts_("evtchn:");
			putu(xs_port);
			puts_(xs_watching ? " watch=ok\n" : " watch=failed\n");
		} else {
			puts_("none\n");
		}
		blk_hvm = boot == BOOT_MULTIBOOT;
		blk_probe();
	}

	period = (uint64_t)tsc_per_ms * HB_PERIOD_MS;
	next_hb = rdtsc();
	for (;;) {
		now = rdtsc();
		if (next_hb > now + 2 * period) /* TSC went backwards (migrated?) */
			next_hb = now;
		if (now >= next_hb) {
			if (wd_feed)
				watchdog_arm();
			if (xen_base)
				xen_console_find();
			puts_("HB ");
			putu(++hb_count);
			puts_("\n");
			if (seq_cont)
				seq_write();
			next_hb += period;
			if (now >= next_hb)     /* missed beats (paused?): no burst */
				next_hb = now + period;
		}
		poll_input(now);
		dirty_step(now);
	}
}
