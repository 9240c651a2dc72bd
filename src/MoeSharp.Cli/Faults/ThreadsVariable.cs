using MoeSharp.Compute;

namespace MoeSharp.Cli.Faults;

/// <summary>
/// <c>MOESHARP_THREADS</c>, checked once when the process starts, before any command: a bad value is a usage error
/// (one line, exit code 2) instead of an exception on the first rank thread that asks for its share of the threads,
/// which under MPI aborted the job with a stack trace.
/// </summary>
internal static class ThreadsVariable
{
    /// <summary>The variables MPI launchers set to a process's world rank (Open MPI, MPICH Hydra, PMIx).</summary>
    private static readonly string[] RankVariables = ["OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"];

    /// <summary>
    /// The one-line usage error for this process's <c>MOESHARP_THREADS</c>, or null when it is usable.
    /// </summary>
    public static string? Check() =>
        HostThreads.CheckVariable(Environment.GetEnvironmentVariable(HostThreads.EnvironmentVariable));

    /// <summary>
    /// Whether this process prints the error: every rank of an MPI job inherits the same variable, and the job's
    /// error is one line, so only world rank 0 (or a process outside MPI) prints; the others exit silently.
    /// </summary>
    public static bool PrintsErrors() =>
        RankVariables.Select(Environment.GetEnvironmentVariable).FirstOrDefault(v => v is not null) is not string rank
        || rank == "0";
}
