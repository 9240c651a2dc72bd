"""TraceLab's timing patch (stop 27): adds GemmTrace to src/MoeSharp/Compute/HostGemm.cs of a checkout (argument: its
root) so that each task of a parallel pass records its start, end, packing and waiting ticks, and lets LAB_GRID=rows,cols
and LAB_KC=depth override the task grid's blocks and depth on the private-packing path. Written for b415395's HostGemm;
never for a build that ships."""
import sys

path = sys.argv[1] + "/src/MoeSharp/Compute/HostGemm.cs"
s = open(path).read()


def rep(old, new):
    global s
    assert s.count(old) == 1, old
    s = s.replace(old, new)


ts = "System.Diagnostics.Stopwatch.GetTimestamp()"
rep("""        var states = new GemmPanelChunks(chunkStates);
        HostWorkerTeam.For(""", f"""        var states = new GemmPanelChunks(chunkStates);
        GemmTrace.PassStart = {ts};
        GemmTrace.Tasks = blockStart[count];
        HostWorkerTeam.For(""")
rep("""            task =>
            {
                int i = Owner(blockStart, task);""", f"""            task =>
            {{
                long traceStart = {ts};
                GemmTrace.WaitTicks = 0;
                GemmTrace.PackTicks = 0;
                int i = Owner(blockStart, task);""")
rep("""                ComputeBlock(p, shared, i0, Math.Min(mcOf[i], p.M - i0), j0, Math.Min(nc, p.N - j0), accumulate, kc);
            }
        );""", f"""                ComputeBlock(p, shared, i0, Math.Min(mcOf[i], p.M - i0), j0, Math.Min(nc, p.N - j0), accumulate, kc);
                if (task < GemmTrace.Start.Length)
                {{
                    GemmTrace.Start[task] = traceStart;
                    GemmTrace.End[task] = {ts};
                    GemmTrace.Wait[task] = GemmTrace.WaitTicks;
                    GemmTrace.Pack[task] = GemmTrace.PackTicks;
                    GemmTrace.Thread[task] = Environment.CurrentManagedThreadId;
                }}
            }}
        );
        GemmTrace.PassEnd = {ts};""")
# Everything from the first packing of a chunk to the start of its kernels is packing, except the waits for A.
rep("""            int depth = Math.Min(kc, k - p0);
            if (shared.A == null)""", f"""            int depth = Math.Min(kc, k - p0);
            long packStart = {ts};
            if (shared.A == null)""")
rep("""            if (shared.A != null)
            {
                for (int ip = 0; ip < mPanels; ip++)
                    states.WaitFor(shared.AChunks + ((firstAPanel + ip) * chunks) + chunk);
            }""", f"""            long waitStart = {ts};
            GemmTrace.PackTicks += waitStart - packStart;
            if (shared.A != null)
            {{
                for (int ip = 0; ip < mPanels; ip++)
                    states.WaitFor(shared.AChunks + ((firstAPanel + ip) * chunks) + chunk);
            }}
            GemmTrace.WaitTicks += {ts} - waitStart;""")
rep("""                    states.WaitFor(shared.BChunks + ((firstBPanel + jp) * chunks) + chunk);""", f"""                    long bWait = {ts};
                    states.WaitFor(shared.BChunks + ((firstBPanel + jp) * chunks) + chunk);
                    GemmTrace.WaitTicks += {ts} - bWait;""")
rep("""            privatePacking = true;""", """            privatePacking = true;
            if (Environment.GetEnvironmentVariable("LAB_GRID") is string grid)
            {
                mc = int.Parse(grid.Split(',')[0]);
                nc = int.Parse(grid.Split(',')[1]);
            }
            if (Environment.GetEnvironmentVariable("LAB_KC") is string depthOverride)
                kc = int.Parse(depthOverride);""")
s += """
internal static class GemmTrace
{
    public static long PassStart, PassEnd;
    public static int Tasks;
    public static readonly long[] Start = new long[4096], End = new long[4096], Wait = new long[4096], Pack = new long[4096];
    public static readonly int[] Thread = new int[4096];
    [ThreadStatic] public static long WaitTicks;
    [ThreadStatic] public static long PackTicks;
}
"""
open(path, "w").write(s)
