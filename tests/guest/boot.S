/*
 * boot.S - entry points of the hagent test guest.
 *
 * Two ways in:
 *   _start     multiboot v1 (QEMU -kernel): EAX = 0x2BADB002, EBX = multiboot info
 *   pvh_start  Xen/QEMU PVH (XEN_ELFNOTE_PHYS32_ENTRY): EBX = hvm_start_info
 * Both arrive in 32-bit flat protected mode with paging off.  We load our own
 * GDT and IDT (the loaders leave GDTR undefined), set up a stack and call
 * kmain(boot_type, magic, info) which never returns.  Interrupts stay off.
 */

#define MB_MAGIC   0x1BADB002
#define MB_FLAGS   0x00000002            /* bit 1: want memory info (mem_*, mmap_*) */

#define XEN_ELFNOTE_PHYS32_ENTRY 18

        .section .multiboot, "a"
        .balign 4
        .long   MB_MAGIC
        .long   MB_FLAGS
        .long   -(MB_MAGIC + MB_FLAGS)

        /* ELF note so that Xen (and QEMU, if no multiboot header) can boot us as PVH. */
        .section .note.Xen, "a", @note
        .balign 4
        .long   4                        /* namesz ("Xen\0") */
        .long   4                        /* descsz */
        .long   XEN_ELFNOTE_PHYS32_ENTRY /* type */
        .asciz  "Xen"
        .balign 4
        .long   pvh_start                /* 32-bit physical entry point */

        .text
        .code32
        .globl  _start
        .type   _start, @function
_start:
        cli
        movl    $1, %edi                 /* boot type 1: multiboot */
        jmp     common

        .globl  pvh_start
        .type   pvh_start, @function
pvh_start:
        cli
        movl    $2, %edi                 /* boot type 2: PVH */

common:
        cld
        movl    %eax, %esi               /* keep the loader's magic */
        movl    %edi, %edx               /* and the boot type */
        lgdt    gdt_desc
        ljmp    $0x08, $1f
1:      movw    $0x10, %ax
        movw    %ax, %ds
        movw    %ax, %es
        movw    %ax, %ss
        movw    %ax, %fs
        movw    %ax, %gs
        /* Zero .bss (the stack included): not every loader does.  Under a
         * Xen HVM guest, QEMU's multiboot ROM copies the file's bytes only,
         * over RAM where hvmloader ran. */
        movl    $__bss_start, %edi
        movl    $_end, %ecx
        subl    %edi, %ecx
        xorl    %eax, %eax
        rep stosb
        movl    %edx, %edi
        movl    $stack_top, %esp
        pushl   $0
        popfl                            /* IF=0, DF=0, everything else clear */
        subl    $4, %esp                 /* keep 16-byte alignment at the call */
        pushl   %ebx                     /* info */
        pushl   %esi                     /* magic */
        pushl   %edi                     /* boot type */
        call    kmain
halt:   cli
        hlt
        jmp     halt

/*
 * Exception stubs for vectors 0..31, installed by the C code.  NMI (2) is
 * ignored; anything else reports the vector and halts.  They exist only so a
 * stray exception halts visibly instead of triple-faulting (which would look
 * like a reboot).
 */
        .globl  exc_nmi
exc_nmi:
        iret

        .globl  exc_stubs
        .balign 16
exc_stubs:                               /* 32 stubs, 16 bytes apart */
        .set    vec, 0
        .rept   32
        .balign 16
        movl    $vec, %eax
        jmp     exc_common
        .set    vec, vec + 1
        .endr

exc_common:
        movl    $stack_top, %esp         /* the old stack may be what faulted */
        subl    $12, %esp
        pushl   %eax                     /* vector */
        call    exception_trap           /* prints, does not return */
        jmp     halt

        .section .rodata
        .balign 8
gdt:
        .quad   0                        /* null */
        .quad   0x00cf9a000000ffff       /* 0x08: code, flat 4 GiB, 32-bit */
        .quad   0x00cf92000000ffff       /* 0x10: data, flat 4 GiB */
gdt_end:
gdt_desc:
        .word   gdt_end - gdt - 1
        .long   gdt

        .bss
        .balign 16
stack:
        .skip   16384
stack_top:

        .section .note.GNU-stack, "", @progbits
