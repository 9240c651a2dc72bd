namespace MoeSharp.Mpi.Native;

/// <summary>
/// The MPI functions MoeSharp calls, with the ABI differences hidden: Open MPI's handles are addresses of
/// exported objects (pointers), MPICH's are 32-bit integers. Every handle here is widened to
/// <see cref="nint"/>; each implementation converts at the call. Methods return the raw MPI error code
/// (<see cref="Success"/> on success) so that <see cref="MpiRuntime.Check(int, string)"/> turns codes into exceptions
/// in one place.
/// </summary>
/// <remarks>Statuses are never read: implementations pass a scratch buffer large enough for either ABI.</remarks>
internal unsafe interface IMpiAbi
{
    /// <summary><c>MPI_SUCCESS</c> (0 in both ABIs).</summary>
    const int Success = 0;

    /// <summary>The soname that was loaded, for messages.</summary>
    string LibraryName { get; }

    /// <summary>"Open MPI" or "MPICH".</summary>
    string Flavor { get; }

    /// <summary><c>MPI_COMM_WORLD</c>.</summary>
    nint CommWorld { get; }

    /// <summary><c>MPI_COMM_NULL</c>: what <c>MPI_Comm_split</c> returns for <c>MPI_UNDEFINED</c> colors.</summary>
    nint CommNull { get; }

    /// <summary><c>MPI_BYTE</c>: every exchange is expressed in bytes.</summary>
    nint Byte { get; }

    /// <summary><c>MPI_ERRORS_RETURN</c>, installed on the world so that failures come back as codes.</summary>
    nint ErrorsReturn { get; }

    int InitThread(int required, out int provided);
    int Initialized(out bool flag);
    int Finalized(out bool flag);
    int Finalize();
    int Abort(nint comm, int errorCode);
    int CommRank(nint comm, out int rank);
    int CommSize(nint comm, out int size);
    int CommSplit(nint comm, int color, int key, out nint newComm);
    int CommFree(nint comm);
    int CommSetErrhandler(nint comm, nint errhandler);
    int Barrier(nint comm);
    int Alltoall(
        void* send,
        int sendCount,
        nint sendType,
        void* receive,
        int receiveCount,
        nint receiveType,
        nint comm
    );

    int Alltoallv(
        void* send,
        int* sendCounts,
        int* sendDispls,
        nint sendType,
        void* receive,
        int* receiveCounts,
        int* receiveDispls,
        nint receiveType,
        nint comm
    );

    int Ialltoallv(
        void* send,
        int* sendCounts,
        int* sendDispls,
        nint sendType,
        void* receive,
        int* receiveCounts,
        int* receiveDispls,
        nint receiveType,
        nint comm,
        out nint request
    );

    int Allgather(
        void* send,
        int sendCount,
        nint sendType,
        void* receive,
        int receiveCount,
        nint receiveType,
        nint comm
    );
    int Isend(void* buffer, int count, nint type, int destination, int tag, nint comm, out nint request);
    int Irecv(void* buffer, int count, nint type, int source, int tag, nint comm, out nint request);

    /// <summary>
    /// <c>MPI_Testall</c>; completed requests are set to <c>MPI_REQUEST_NULL</c> in <paramref name="requests"/>.
    /// </summary>
    int Testall(Span<nint> requests, out bool completed);

    /// <summary><c>MPI_Waitall</c>.</summary>
    int Waitall(Span<nint> requests);

    /// <summary><c>MPI_Error_string</c>, or null when even that fails.</summary>
    string? ErrorString(int code);
}
