using MoeSharp.Collectives;
using MoeSharp.Mpi;
using MoeSharp.Verification;

namespace MoeSharp.Cli.Commands;

/// <summary>
/// Runs a command's per-rank body on every rank: on threads of this process, or as this process's rank of an
/// MPI job. Returns rank 0's result, which the caller prints; other MPI ranks get null and stay quiet.
/// </summary>
internal static class RankLauncher
{
    /// <summary>Runs <paramref name="body"/> on every rank.</summary>
    /// <param name="comm">In-process threads or MPI.</param>
    /// <param name="inProcessWorld">World size for in-process ranks; ignored under MPI (the job's size counts).</param>
    /// <param name="body">One rank's work; returns what rank 0 prints.</param>
    /// <param name="timeout">How long a collective may wait for its peers.</param>
    /// <param name="checkJobSize">
    /// Under MPI, checks the options against the job's size before <paramref name="body"/> runs and throws an
    /// <see cref="ArgumentException"/> naming the option when they disagree (e.g. <c>--world</c>). The ranks
    /// agree on the outcome first, so a bad option is a usage error (one line from rank 0, exit code 2), not
    /// an abort with a stack trace from every rank.
    /// </param>
    /// <returns>Rank 0's result, or null on the other ranks of an MPI job.</returns>
    /// <exception cref="ReportedByRankZeroException">
    /// On every rank: an option disagrees with the MPI job (seen by any rank); rank 0 has already printed it.
    /// </exception>
    public static T? Run<T>(
        CommKind comm,
        int inProcessWorld,
        Func<IProcessGroup, T> body,
        TimeSpan? timeout,
        Action<int>? checkJobSize = null
    )
        where T : class
    {
        if (comm == CommKind.InProcess)
            return InProcessWorld.Run(inProcessWorld, body, timeout)[0];

        using MpiProcessGroup world = MpiProcessGroup.InitWorld(timeout);
        if (checkJobSize is not null)
            CheckOnEveryRank(world, checkJobSize);
        try
        {
            T result = body(world);
            return world.Rank == 0 ? result : null;
        }
        catch (Exception ex)
        {
            // MPI_Abort ends every process of the job, so no rank waits for this one.
            world.Abort(ex);
            throw;
        }
    }

    private static void CheckOnEveryRank(MpiProcessGroup world, Action<int> check)
    {
        string? problem = null;
        try
        {
            check(world.Size);
        }
        catch (ArgumentException ex)
        {
            problem = ex.Message;
        }
        // Every rank learns the first problem (ranks may have been started with different options), so all
        // of them leave together and MPI_Finalize is reached by all; no one waits in a collective.
        string? first = RankMessages.FirstInRankOrder(world, problem);
        if (first is null)
            return;
        // The message already names the option; the rank prefix matters only when another rank saw it.
        string message = problem ?? first;
        if (world.Rank == 0)
        {
            // Printed here, before the barrier, because mpiexec stops the whole job as soon as one process exits
            // non-zero: had rank 0 printed after finalizing, another rank's exit could kill it first.
            Console.Error.WriteLine($"moe: {message}");
            Console.Error.Flush();
        }
        world.Barrier();
        throw new ReportedByRankZeroException(message);
    }
}
