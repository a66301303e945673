# redraw with: gnuplot learning-curves.gp (in this folder)
set terminal pngcairo size 1000,600 font ',10'
set output 'learning-curves.png'
set title 'tmp-chk: test (solid) and train (dashed) accuracy, mean and +/- sd band over seeds' noenhanced
set ylabel 'accuracy'
set grid ytics
set xlabel 'epoch'
set xtics 1
set key bottom right noenhanced
set style fill transparent solid 0.15 noborder
set xrange [1:2]
plot \
  'learning-curves.dat' index 0 using 1:3:4 with filledcurves lc 1 notitle, \
  '' index 0 using 1:2 with linespoints pt 7 ps 0.6 lc 1 title 'all', \
  '' index 0 using 1:5 with lines dt 2 lc 1 notitle
set terminal svg size 1000,600 font ',10'
set output 'learning-curves.svg'
replot
