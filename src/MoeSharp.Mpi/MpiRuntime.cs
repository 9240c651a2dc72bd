using MoeSharp.Mpi.Native;

namespace MoeSharp.Mpi;

/// <summary>
/// One initialized MPI world, shared by the world group and every group split from it: the ABI, the thread
/// level MPI granted, the world rank (for messages) and whether the world has been finalized.
/// </summary>
/// <remarks>
/// MPI may be initialized once per process and never again after <c>MPI_Finalize</c>. That process-wide
/// state lives in the MPI library itself (queried with <c>MPI_Initialized</c> / <c>MPI_Finalized</c>);
/// <see cref="InitLock"/> only serializes the check-then-initialize in <see cref="Initialize"/>. This is
/// the one place in MoeSharp.Mpi that deals with process-wide state.
/// </remarks>
internal sealed class MpiRuntime
{
    private static readonly Lock InitLock = new();

    // Null when MPI granted MPI_THREAD_MULTIPLE; with MPI_THREAD_SERIALIZED every call takes this lock so
    // that the asynchronous exchange's polling thread never calls MPI concurrently with the caller.
    private readonly Lock? _serialize;
    private int _finalized;

    private MpiRuntime(IMpiAbi abi, MpiThreadLevel level, int worldRank, int worldSize)
    {
        Abi = abi;
        ThreadLevel = level;
        WorldRank = worldRank;
        WorldSize = worldSize;
        _serialize = level == MpiThreadLevel.Multiple ? null : new Lock();
    }

    public IMpiAbi Abi { get; }
    public MpiThreadLevel ThreadLevel { get; }
    public int WorldRank { get; }
    public int WorldSize { get; }
    public bool IsFinalized => Volatile.Read(ref _finalized) != 0;

    /// <summary>Loads MPI and calls <c>MPI_Init_thread(MPI_THREAD_MULTIPLE)</c>.</summary>
    public static MpiRuntime Initialize()
    {
        IMpiAbi abi = MpiLibrary.Load();
        lock (InitLock)
        {
            Check(abi, abi.Finalized(out bool finalized), "MPI_Finalized", -1);
            if (finalized)
                throw new InvalidOperationException(
                    "MPI has already been finalized in this process and cannot be initialized again."
                );
            Check(abi, abi.Initialized(out bool initialized), "MPI_Initialized", -1);
            if (initialized)
                throw new InvalidOperationException(
                    "MPI is already initialized in this process: create the world group once and use Split for sub-groups."
                );

            Check(abi, abi.InitThread((int)MpiThreadLevel.Multiple, out int provided), "MPI_Init_thread", -1);
            var level = (MpiThreadLevel)provided;
            if (level < MpiThreadLevel.Serialized)
            {
                abi.Finalize();
                throw new NotSupportedException(
                    $"{abi.Flavor} ({abi.LibraryName}) provides only MPI_THREAD_{level.ToString().ToUpperInvariant()}; MoeSharp needs "
                        + "MPI_THREAD_MULTIPLE (or at least MPI_THREAD_SERIALIZED) because asynchronous exchanges complete on another thread. "
                        + "Use an MPI build with thread support."
                );
            }

            // The default handler (MPI_ERRORS_ARE_FATAL) would kill the job on any error; returning codes lets
            // us throw an exception naming the function. Groups split from the world inherit it.
            Check(abi, abi.CommSetErrhandler(abi.CommWorld, abi.ErrorsReturn), "MPI_Comm_set_errhandler", -1);
            Check(abi, abi.CommRank(abi.CommWorld, out int rank), "MPI_Comm_rank", -1);
            Check(abi, abi.CommSize(abi.CommWorld, out int size), "MPI_Comm_size", rank);
            return new MpiRuntime(abi, level, rank, size);
        }
    }

    /// <summary>Throws an <see cref="MpiException"/> when <paramref name="code"/> is not <c>MPI_SUCCESS</c>.</summary>
    public void Check(int code, string function) => Check(Abi, code, function, WorldRank);

    private static void Check(IMpiAbi abi, int code, string function, int worldRank)
    {
        if (code != IMpiAbi.Success)
            throw new MpiException(function, code, abi.ErrorString(code), worldRank);
    }

    /// <summary>
    /// Enters the serializing lock for a block of MPI calls; a no-op under <c>MPI_THREAD_MULTIPLE</c>.
    /// Use as <c>using (runtime.Enter()) { ... }</c>.
    /// </summary>
    public Gate Enter() => new(_serialize);

    /// <summary>Holds the serializing lock (if any) until disposed.</summary>
    public readonly struct Gate : IDisposable
    {
        private readonly Lock? _lock;

        public Gate(Lock? gate)
        {
            _lock = gate;
            _lock?.Enter();
        }

        public void Dispose() => _lock?.Exit();
    }

    /// <summary>Calls <c>MPI_Finalize</c> once.</summary>
    public void FinalizeOnce()
    {
        if (Interlocked.Exchange(ref _finalized, 1) != 0)
            return;
        using (Enter())
            Check(Abi.Finalize(), "MPI_Finalize");
    }

    /// <summary>How long <see cref="AbortJob"/> waits between printing its message and aborting the job.</summary>
    private static readonly TimeSpan AbortGrace = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// Prints <paramref name="message"/> to stderr and ends the whole job with <c>MPI_Abort</c>. Does not return
    /// (MPI_Abort terminates the process); never takes the serializing lock, which a stuck collective may hold.
    /// </summary>
    public void AbortJob(string message)
    {
        Console.Error.WriteLine(message);
        Console.Error.Flush();
        // The launcher forwards a rank's output asynchronously, and MPI_Abort tears the job down at once: under load
        // MPICH's launcher lost the message (a CI run printed nothing). A moment's pause lets it reach the terminal.
        Thread.Sleep(AbortGrace);
        Abi.Abort(Abi.CommWorld, 1);
        // MPI_Abort should not return; if it does, the job must still not hang.
        Environment.Exit(1);
    }
}
