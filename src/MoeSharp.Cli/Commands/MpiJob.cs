namespace MoeSharp.Cli.Commands;

/// <summary>Whether this process was started by an MPI launcher, read from the variables the launchers set.</summary>
internal static class MpiJob
{
    /// <summary>
    /// Set by Open MPI's <c>mpiexec</c> (<c>OMPI_COMM_WORLD_SIZE</c>), MPICH's Hydra (<c>PMI_SIZE</c>,
    /// <c>MPI_LOCALNRANKS</c>) and PMIx launchers such as <c>srun --mpi=pmix</c> (<c>PMIX_RANK</c>).
    /// </summary>
    private static readonly string[] LauncherVariables =
    [
        "OMPI_COMM_WORLD_SIZE",
        "PMI_SIZE",
        "MPI_LOCALNRANKS",
        "PMIX_RANK",
    ];

    /// <summary>True in a process started by an MPI launcher.</summary>
    public static bool IsLaunched => LauncherVariables.Any(v => Environment.GetEnvironmentVariable(v) is not null);

    /// <summary>
    /// The one-line usage error for <c>--comm mpi</c> outside an MPI job, or null when the process is in one
    /// (or <paramref name="comm"/> is not MPI). Checked before the other options: without a job the world size is
    /// unknown, and a message about it would name the wrong problem.
    /// </summary>
    public static string? CheckLaunched(CommKind comm) =>
        comm == CommKind.Mpi && !IsLaunched
            ? "--comm mpi: this process is not part of an MPI job; launch it with mpiexec, e.g. 'mpiexec -n 4 moe train --comm mpi'"
            : null;
}
