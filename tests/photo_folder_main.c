/*
 * photo_folder_main.c - cnnbench-photo-folder: the real-photo example's image folder.
 *
 *   cnnbench-photo-folder OUT [CLASSES [PER_CLASS [VAL_PER [SIDE [SEED]]]]]
 *
 * Writes OUT/train/<photo>/NNNN.jpg and OUT/val/<photo>/NNNN.jpg from python3-skimage's
 * colour photographs (defaults: 4 classes, 64 and 16 images, shorter side 256, seed 1).
 * Exits 2 when the photographs are missing (apt-get install python3-skimage).
 */
#include <stdio.h>
#include <stdlib.h>

#include "photofolder.h"

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 7) {
        fprintf(stderr, "usage: cnnbench-photo-folder OUT [CLASSES [PER_CLASS [VAL_PER [SIDE "
                        "[SEED]]]]]\n");
        return 2;
    }
    int classes = argc > 2 ? atoi(argv[2]) : 4, per = argc > 3 ? atoi(argv[3]) : 64;
    int val = argc > 4 ? atoi(argv[4]) : 16, side = argc > 5 ? atoi(argv[5]) : 256;
    unsigned long long seed = argc > 6 ? strtoull(argv[6], NULL, 10) : 1;
    const char *names[16];
    if (classes < 1 || classes > 8 || per < 1 || val < 1 || side < 8) {
        fprintf(stderr, "cnnbench-photo-folder: CLASSES 1 to 8, PER_CLASS and VAL_PER at least "
                        "1, SIDE at least 8\n");
        return 2;
    }
    if (photo_list(names, classes) < classes) {
        fprintf(stderr, "cnnbench-photo-folder: the photographs of python3-skimage are not in "
                        "%s; apt-get install python3-skimage (or set CNB_PHOTO_DIR)\n",
                PHOTO_DIR);
        return 2;
    }
    if (photo_folder(argv[1], classes, per, val, side, seed) != 0)
        return 1;
    printf("%s: %d classes, %d training and %d validation images each\n", argv[1], classes,
           per, val);
    return 0;
}
