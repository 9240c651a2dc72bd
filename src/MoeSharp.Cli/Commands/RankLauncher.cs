using MoeSharp.Collectives;
using MoeSharp.Mpi;

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
    /// <returns>Rank 0's result, or null on the other ranks of an MPI job.</returns>
    public static T? Run<T>(CommKind comm, int inProcessWorld, Func<IProcessGroup, T> body, TimeSpan? timeout) where T : class
    {
        if (comm == CommKind.InProcess) return InProcessWorld.Run(inProcessWorld, body, timeout)[0];

        using MpiProcessGroup world = MpiProcessGroup.InitWorld(timeout);
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
}
