namespace MoeSharp.Cli.Commands;

/// <summary>How the ranks of a command talk: threads of this process, or MPI processes.</summary>
internal enum CommKind
{
    /// <summary>Every rank on its own thread of this process (the embedded default).</summary>
    InProcess,

    /// <summary>This process is one rank of an MPI job (<c>mpiexec -n N moe ... --comm mpi</c>).</summary>
    Mpi,
}

/// <summary>Parses <c>--comm</c>.</summary>
internal static class CommKinds
{
    /// <summary><c>inproc</c> (default) or <c>mpi</c>.</summary>
    public static CommKind Parse(string? text) =>
        text switch
        {
            null or "inproc" => CommKind.InProcess,
            "mpi" => CommKind.Mpi,
            _ => throw new ArgumentException($"--comm '{text}' is not inproc or mpi"),
        };
}
