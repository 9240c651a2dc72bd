using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace MoeSharp.Compute;

/// <summary>
/// The threads that run the host kernels' parallel passes (<see cref="HostGemm"/>'s products and every
/// <see cref="HostParallel.For"/> loop): one kept team, all woken at once for a pass and spinning a short while after
/// it, so that the next kernel of a step finds them awake.
/// </summary>
/// <remarks>
/// <para>
/// <see cref="Parallel.For(int, int, ParallelOptions, Action{int})"/> brings its workers in one after another (each
/// replica it starts queues the next), so on 16 threads the last one joins a few hundred microseconds after the first:
/// more than a small expert's whole product takes. Here the caller publishes the pass, wakes every sleeping helper it
/// needs in one sweep, and helpers that are still spinning from the previous pass start at once. The element-wise and
/// row kernels between a step's products run on the same team, so its helpers stay warm across the whole step instead
/// of going back to sleep while thread-pool workers ramp up for each of them (on the GPU machine's Xeon the T 2048
/// layer step at 16 threads took 34 ms with those kernels on the thread pool, 28 ms on the team).
/// </para>
/// <para>
/// One caller uses the team at a time; a pass asked for while it is busy (another in-process rank's product, or a
/// product inside a pass) runs through <see cref="Parallel.For(int, int, ParallelOptions, Action{int})"/> instead.
/// Which thread runs a task never changes a result: every task writes its own outputs the same way.
/// </para>
/// </remarks>
internal static class HostWorkerTeam
{
    /// <summary>
    /// How long a helper spins for the next pass before it sleeps: long enough to cover the gap between the kernels of
    /// one layer step, short enough that idle helpers give their cores back to other work (another in-process rank's
    /// kernels on the thread pool) soon.
    /// </summary>
    private static readonly long SpinTicks = Stopwatch.Frequency / 10_000; // 100 µs

    private static readonly object GrowLock = new();
    private static Helper[] s_helpers = [];
    private static Pass? s_pass;
    private static int s_busy;

    /// <summary>
    /// Runs <paramref name="body"/>(i) for every <c>i</c> in <c>[0, count)</c> on at most
    /// <paramref name="threads"/> threads (the caller's one of them), and returns when all have run. The first
    /// exception a task throws is rethrown after every task has finished.
    /// </summary>
    public static void For(int count, int threads, Action<int> body)
    {
        if (count <= 0)
            return;
        int helpers = Math.Min(threads, count) - 1;
        if (helpers <= 0)
        {
            for (int i = 0; i < count; i++)
                body(i);
            return;
        }
        if (Interlocked.CompareExchange(ref s_busy, 1, 0) != 0)
        {
            ForOnThreadPool(count, threads, body);
            return;
        }
        try
        {
            Helper[] team = Team(helpers);
            var pass = new Pass(body, count, helpers);
            // A full fence: a helper that announces it is going to sleep either sees this pass or is seen asleep below.
            Interlocked.Exchange(ref s_pass, pass);
            for (int w = 0; w < helpers; w++)
                team[w].Wake();
            pass.Work();
            var spin = new SpinWait();
            while (Volatile.Read(ref pass.Finished) < count)
                spin.SpinOnce(sleep1Threshold: -1);
            // Nothing of this pass is needed any more; helpers that look now find no new pass.
            Volatile.Write(ref s_pass, null);
            if (pass.Error is not null)
                ExceptionDispatchInfo.Capture(pass.Error).Throw();
        }
        finally
        {
            Volatile.Write(ref s_busy, 0);
        }
    }

    /// <summary>
    /// <see cref="For"/> while the team is busy, on the thread pool and with the same contract: every task runs, and
    /// the first exception a task throws is rethrown as itself afterwards. <see cref="Parallel.For(int, int,
    /// ParallelOptions, Action{int})"/> alone would stop starting tasks at the first failure and throw an
    /// <see cref="AggregateException"/>, so a caller's catch would depend on whether another pass held the team.
    /// </summary>
    private static void ForOnThreadPool(int count, int threads, Action<int> body)
    {
        Exception? first = null;
        Parallel.For(
            0,
            count,
            new ParallelOptions { MaxDegreeOfParallelism = threads },
            i =>
            {
                try
                {
                    body(i);
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref first, e, null);
                }
            }
        );
        if (first is not null)
            ExceptionDispatchInfo.Capture(first).Throw();
    }

    /// <summary>The first <paramref name="helpers"/> helpers, started on first need.</summary>
    private static Helper[] Team(int helpers)
    {
        Helper[] team = Volatile.Read(ref s_helpers);
        if (team.Length >= helpers)
            return team;
        lock (GrowLock)
        {
            team = s_helpers;
            if (team.Length < helpers)
            {
                var grown = new Helper[helpers];
                team.CopyTo(grown, 0);
                for (int w = team.Length; w < helpers; w++)
                    grown[w] = new Helper(w);
                Volatile.Write(ref s_helpers, grown);
                team = grown;
            }
            return team;
        }
    }

    /// <summary>One pass: tasks claimed one at a time by whoever is free, counted as they finish.</summary>
    private sealed class Pass(Action<int> body, int count, int helpers)
    {
        public int Next;
        public int Finished;
        public Exception? Error;

        /// <summary>Helpers with an index below this take part.</summary>
        public int Helpers { get; } = helpers;

        /// <summary>Runs tasks until none is left to claim.</summary>
        public void Work()
        {
            for (int i = Interlocked.Increment(ref Next) - 1; i < count; i = Interlocked.Increment(ref Next) - 1)
            {
                try
                {
                    body(i);
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref Error, e, null);
                }
                Interlocked.Increment(ref Finished);
            }
        }
    }

    /// <summary>A helper thread: takes part in every pass that wants its index, spins a while, then sleeps.</summary>
    private sealed class Helper
    {
        private readonly int _index;
        private readonly SemaphoreSlim _signal = new(0);
        private int _sleeping;

        public Helper(int index)
        {
            _index = index;
            new Thread(Loop) { IsBackground = true, Name = $"gemm-{index}" }.Start();
        }

        /// <summary>Wakes the helper if it sleeps (a helper that is spinning sees the new pass by itself).</summary>
        public void Wake()
        {
            if (Interlocked.Exchange(ref _sleeping, 0) == 1)
                _signal.Release();
        }

        private void Loop()
        {
            Pass? last = null;
            while (true)
            {
                Pass pass = Next(last);
                last = pass;
                if (_index < pass.Helpers)
                    pass.Work();
            }
        }

        /// <summary>The first pass other than <paramref name="last"/>: spinning, then asleep until woken.</summary>
        private Pass Next(Pass? last)
        {
            long start = Stopwatch.GetTimestamp();
            while (true)
            {
                Pass? pass = Volatile.Read(ref s_pass);
                if (pass is not null && pass != last)
                    return pass;
                if (Stopwatch.GetTimestamp() - start < SpinTicks)
                {
                    Thread.SpinWait(16);
                    continue;
                }
                // Announce sleep with a full fence, then look once more: a pass published before the announcement is
                // seen here, one published after it finds the helper asleep and wakes it. A wake-up left over from a
                // pass seen here only costs one more round of this loop.
                Interlocked.Exchange(ref _sleeping, 1);
                pass = Volatile.Read(ref s_pass);
                if (pass is null || pass == last)
                    _signal.Wait();
                Interlocked.Exchange(ref _sleeping, 0);
                start = Stopwatch.GetTimestamp();
            }
        }
    }
}
