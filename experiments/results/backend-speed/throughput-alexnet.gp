# redraw with: gnuplot throughput-alexnet.gp (in this folder)
set terminal pngcairo size 1000,600 font ',10'
set output 'throughput-alexnet.png'
set title 'alexnet: images per second (median; bars: interquartile range)' noenhanced
set ylabel 'images / s'
set grid ytics
set logscale y
set style data histogram
set style histogram errorbars gap 2 lw 1
set style fill solid 0.7 border -1
set xtics noenhanced rotate by -25
set key top left
plot 'throughput-alexnet.dat' using 2:3:4:xtic(1) title 'forward (inference)' lc rgb '#4477aa', '' using 5:6:7 title 'training step' lc rgb '#ee6677'
set terminal svg size 1000,600 font ',10'
set output 'throughput-alexnet.svg'
replot
