# redraw with: gnuplot layers-alexnet-t2.gp (in this folder)
set terminal pngcairo size 1000,600 font ',10'
set output 'layers-alexnet-t2.png'
set title 'alexnet, 2 threads: forward + backward time per image, per layer (median of the per-layer pass)' noenhanced
set ylabel 'ms per image'
set grid ytics
set logscale y
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.7 border -1
set xtics noenhanced rotate by -45
set key top right
plot 'layers-alexnet-t2.dat' using 2:xtic(1) title 'openblas', 'layers-alexnet-t2.dat' using 3 title 'onednn', 'layers-alexnet-t2.dat' using 4 title 'onednn:nchw', 'layers-alexnet-t2.dat' using 5 title 'direct+onednn'
set terminal svg size 1000,600 font ',10'
set output 'layers-alexnet-t2.svg'
replot
