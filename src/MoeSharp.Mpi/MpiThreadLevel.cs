namespace MoeSharp.Mpi;

/// <summary>MPI thread support levels (same values in Open MPI and MPICH).</summary>
public enum MpiThreadLevel
{
    /// <summary><c>MPI_THREAD_SINGLE</c>: one thread only.</summary>
    Single = 0,

    /// <summary><c>MPI_THREAD_FUNNELED</c>: only the thread that initialized MPI may call it.</summary>
    Funneled = 1,

    /// <summary><c>MPI_THREAD_SERIALIZED</c>: any thread, one at a time.</summary>
    Serialized = 2,

    /// <summary><c>MPI_THREAD_MULTIPLE</c>: any thread, concurrently.</summary>
    Multiple = 3,
}
