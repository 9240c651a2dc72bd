# Stop 30 lab patch (never ship; apply to db60a6a: python3 stop30_lab_patch.py ROOT): env switches read once per process.
#  LAB_WANTED     the shared pass narrows its blocks until each thread has this many (default 2; call A)
#  LAB_PRIVDEPTH  deepest K the private grid takes (default 512)
#  LAB_PRIVBLOCKS the private grid takes products with fewer default blocks than this many per thread (default 2)
#  LAB_PRIVMC     the tallest row block the private grid's cost model may choose (default: mc, 144)
#  LAB_PACKA=1    the private grid packs A rather than reading it in place
import re, sys
root = sys.argv[1]
def env(name, default):
    return f'(int.TryParse(Environment.GetEnvironmentVariable("{name}"), out int v_{name}) ? v_{name} : {default})'
p = root + '/src/MoeSharp/Compute/HostGemm.PrivateGrid.cs'
s = open(p).read()
s = s.replace('private const int MaxPrivateDepth = 512;', f'private static readonly int MaxPrivateDepth = {env("LAB_PRIVDEPTH", 512)};\n    internal static readonly int LabPrivBlocks = {env("LAB_PRIVBLOCKS", 2)};\n    internal static readonly int LabPrivMc = {env("LAB_PRIVMC", 0)};\n    internal static readonly bool LabPackA = Environment.GetEnvironmentVariable("LAB_PACKA") == "1";', 1)
s = s.replace('public bool ReadsAInPlace => GemmMicroKernel.Wide;', 'public bool ReadsAInPlace => GemmMicroKernel.Wide && !LabPackA;', 1)
open(p, 'w').write(s)
p = root + '/src/MoeSharp/Compute/HostGemm.cs'
s = open(p).read()
s = s.replace('int wanted = 2 * maxDegreeOfParallelism;', f'int wanted = {env("LAB_WANTED", 2)} * maxDegreeOfParallelism;', 1)
s = s.replace('&& TotalBlocks(work, mc, nc) < 2 * maxDegreeOfParallelism', '&& TotalBlocks(work, mc, nc) < LabPrivBlocks * maxDegreeOfParallelism', 1)
s = s.replace('GemmTaskGrid.Choose(work[0].M, work[0].N, maxDegreeOfParallelism, mc, nc)', 'GemmTaskGrid.Choose(work[0].M, work[0].N, maxDegreeOfParallelism, LabPrivMc > 0 ? LabPrivMc : mc, nc)', 1)
open(p, 'w').write(s)
