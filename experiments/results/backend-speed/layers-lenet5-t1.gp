# redraw with: gnuplot layers-lenet5-t1.gp (in this folder)
set terminal pngcairo size 1000,600 font ',10'
set output 'layers-lenet5-t1.png'
set title 'lenet5, 1 thread: forward + backward time per image, per layer (median of the per-layer pass)' noenhanced
set ylabel 'ms per image'
set grid ytics
set logscale y
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.7 border -1
set xtics noenhanced rotate by -45
set key top right
plot 'layers-lenet5-t1.dat' using 2:xtic(1) title 'naive', 'layers-lenet5-t1.dat' using 3 title 'openblas', 'layers-lenet5-t1.dat' using 4 title 'onednn', 'layers-lenet5-t1.dat' using 5 title 'onednn:nchw', 'layers-lenet5-t1.dat' using 6 title 'direct+onednn'
set terminal svg size 1000,600 font ',10'
set output 'layers-lenet5-t1.svg'
replot
