using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MoeSharp.Mpi;

/// <summary>
/// One all-to-all-v in flight on one rank: the collective part (<c>MPI_Alltoallv</c> or <c>MPI_Ialltoallv</c>),
/// the point-to-point pieces of large chunks, and the staging buffers. The caller keeps both buffers pinned
/// until <see cref="Complete"/> has run.
/// </summary>
internal sealed unsafe class PendingExchange
{
    // Any tag works (collectives and point-to-point never match each other); pieces between one pair are
    // matched in posting order, which every rank shares because collectives are called in the same order.
    private const int PieceTag = 0x3E5;

    private readonly MpiRuntime _runtime;
    private readonly ExchangePlan _plan;
    private readonly byte* _receive;
    private readonly nint[] _requests;
    private int _requestCount;
    private byte* _sendStage;
    private byte* _receiveStage;
    private byte[]? _placeholder;

    private PendingExchange(MpiRuntime runtime, ExchangePlan plan, byte* receive, int maxRequests)
    {
        _runtime = runtime;
        _plan = plan;
        _receive = receive;
        _requests = new nint[maxRequests];
    }

    /// <summary>
    /// Starts the exchange. With <paramref name="nonblocking"/> the collective part is <c>MPI_Ialltoallv</c>;
    /// otherwise <c>MPI_Alltoallv</c> has completed when this returns (point-to-point pieces may still be pending).
    /// </summary>
    public static PendingExchange Start(
        MpiRuntime runtime,
        nint comm,
        int rank,
        ExchangePlan plan,
        byte* send,
        byte* receive,
        bool nonblocking
    )
    {
        int size = plan.SendCounts.Length;
        int pieces = 0;
        for (int q = 0; q < size; q++)
        {
            if (q == rank)
                continue;
            if (plan.IsLargeSend(q))
                pieces += PieceCount(plan.SendBytes[q], plan.PieceBytes);
            if (plan.IsLargeReceive(q))
                pieces += PieceCount(plan.ReceiveBytes[q], plan.PieceBytes);
        }

        var exchange = new PendingExchange(runtime, plan, receive, pieces + 1);
        byte* sendBase = send;
        byte* receiveBase = receive;
        if (plan.SendStageBytes > 0)
        {
            exchange._sendStage = (byte*)NativeMemory.Alloc((nuint)plan.SendStageBytes);
            for (int q = 0; q < size; q++)
            {
                if (plan.SendCounts[q] > 0)
                    Buffer.MemoryCopy(
                        send + plan.SendOffsets[q],
                        exchange._sendStage + plan.SendDispls[q],
                        plan.SendCounts[q],
                        plan.SendCounts[q]
                    );
            }
            sendBase = exchange._sendStage;
        }
        if (plan.ReceiveStageBytes > 0)
        {
            exchange._receiveStage = (byte*)NativeMemory.Alloc((nuint)plan.ReceiveStageBytes);
            receiveBase = exchange._receiveStage;
        }

        var abi = runtime.Abi;
        using (runtime.Enter())
        {
            if (plan.HasLarge)
            {
                // Receives first, so that the peers' sends find them posted.
                for (int q = 0; q < size; q++)
                {
                    if (q == rank || !plan.IsLargeReceive(q))
                        continue;
                    for (long at = 0; at < plan.ReceiveBytes[q]; at += plan.PieceBytes)
                    {
                        int n = (int)Math.Min(plan.PieceBytes, plan.ReceiveBytes[q] - at);
                        runtime.Check(
                            abi.Irecv(
                                receive + plan.ReceiveOffsets[q] + at,
                                n,
                                abi.Byte,
                                q,
                                PieceTag,
                                comm,
                                out nint request
                            ),
                            "MPI_Irecv"
                        );
                        exchange._requests[exchange._requestCount++] = request;
                    }
                }
                for (int q = 0; q < size; q++)
                {
                    if (q == rank || !plan.IsLargeSend(q))
                        continue;
                    for (long at = 0; at < plan.SendBytes[q]; at += plan.PieceBytes)
                    {
                        int n = (int)Math.Min(plan.PieceBytes, plan.SendBytes[q] - at);
                        runtime.Check(
                            abi.Isend(
                                send + plan.SendOffsets[q] + at,
                                n,
                                abi.Byte,
                                q,
                                PieceTag,
                                comm,
                                out nint request
                            ),
                            "MPI_Isend"
                        );
                        exchange._requests[exchange._requestCount++] = request;
                    }
                }
                if (plan.IsLargeSend(rank))
                    Buffer.MemoryCopy(
                        send + plan.SendOffsets[rank],
                        receive + plan.ReceiveOffsets[rank],
                        plan.ReceiveBytes[rank],
                        plan.SendBytes[rank]
                    );
            }

            // MPI may reject null buffers even with zero counts, and an empty span pins to null: point such a
            // buffer at a pinned byte that lives as long as the exchange (no bytes are ever read or written).
            if (sendBase == null || receiveBase == null)
            {
                exchange._placeholder = GC.AllocateArray<byte>(1, pinned: true);
                byte* p = (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(exchange._placeholder));
                if (sendBase == null)
                    sendBase = p;
                if (receiveBase == null)
                    receiveBase = p;
            }
            fixed (
                int* sc = plan.SendCounts,
                    sd = plan.SendDispls,
                    rc = plan.ReceiveCounts,
                    rd = plan.ReceiveDispls
            )
            {
                if (nonblocking)
                {
                    // The count arrays are allocated pinned (ExchangePlan), so these pointers outlive the fixed block.
                    runtime.Check(
                        abi.Ialltoallv(
                            sendBase,
                            sc,
                            sd,
                            abi.Byte,
                            receiveBase,
                            rc,
                            rd,
                            abi.Byte,
                            comm,
                            out nint request
                        ),
                        "MPI_Ialltoallv"
                    );
                    exchange._requests[exchange._requestCount++] = request;
                }
                else
                {
                    runtime.Check(
                        abi.Alltoallv(sendBase, sc, sd, abi.Byte, receiveBase, rc, rd, abi.Byte, comm),
                        "MPI_Alltoallv"
                    );
                }
            }
        }
        return exchange;
    }

    /// <summary>Blocks in <c>MPI_Waitall</c> until every request has completed, then <see cref="Complete"/>s.</summary>
    public void Wait()
    {
        if (_requestCount > 0)
        {
            using (_runtime.Enter())
                _runtime.Check(_runtime.Abi.Waitall(_requests.AsSpan(0, _requestCount)), "MPI_Waitall");
        }
        Complete();
    }

    /// <summary>One <c>MPI_Testall</c>; on completion runs <see cref="Complete"/> and returns true.</summary>
    public bool Test()
    {
        bool done = true;
        if (_requestCount > 0)
        {
            using (_runtime.Enter())
                _runtime.Check(_runtime.Abi.Testall(_requests.AsSpan(0, _requestCount), out done), "MPI_Testall");
        }
        if (done)
            Complete();
        return done;
    }

    // Copies the staged receive chunks into place and frees the staging buffers. On an MPI error it is never
    // reached: the staging memory then leaks rather than being freed under requests that may still write it.
    private void Complete()
    {
        if (_receiveStage != null)
        {
            for (int q = 0; q < _plan.ReceiveCounts.Length; q++)
            {
                int n = _plan.ReceiveCounts[q];
                if (n > 0)
                    Buffer.MemoryCopy(_receiveStage + _plan.ReceiveDispls[q], _receive + _plan.ReceiveOffsets[q], n, n);
            }
            NativeMemory.Free(_receiveStage);
            _receiveStage = null;
        }
        if (_sendStage != null)
        {
            NativeMemory.Free(_sendStage);
            _sendStage = null;
        }
    }

    private static int PieceCount(long bytes, int pieceBytes) => (int)((bytes + pieceBytes - 1) / pieceBytes);
}
