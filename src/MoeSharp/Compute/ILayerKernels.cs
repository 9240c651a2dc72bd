using MoeSharp.Tensors;

namespace MoeSharp.Compute;

/// <summary>
/// The layer's half of the backend seam: where a <c>MoeLayer</c>'s tensors come from and the four small kernel
/// seams it runs on them (<see cref="Gemm"/>, <see cref="Router"/>, <see cref="Elementwise"/>,
/// <see cref="Optimizer"/>), next to <see cref="Dispatch"/> (the dispatcher's kernels on the same device: transfers,
/// copies, clears). Router, experts, layer and AdamW are written once against it: <see cref="HostLayerKernels"/>
/// runs them on the host, the CUDA backend on a GPU (cuBLAS and ILGPU kernels).
/// </summary>
public interface ILayerKernels
{
    /// <summary>The dispatcher's kernels on the same device: device name, transfers, copies, clears.</summary>
    IMoeKernels Dispatch { get; }

    /// <summary>
    /// Where the layer's own tensors (weights, activations, gradients) come from and go back to. Rent through a
    /// <see cref="TensorScope"/> for a call's working tensors.
    /// </summary>
    ITensorAllocator Allocator { get; }

    /// <summary>The matrix products.</summary>
    IGemmKernels Gemm { get; }

    /// <summary>The router's score, top-k and counting kernels.</summary>
    IRouterKernels Router { get; }

    /// <summary>SwiGLU and row addition.</summary>
    IElementwiseKernels Elementwise { get; }

    /// <summary>The AdamW step.</summary>
    IOptimizerKernels Optimizer { get; }

    /// <summary>
    /// The experts over padded groups with bfloat16 operands, where the backend has them (a GPU with bfloat16
    /// products); null (the default) runs the experts product by product through <see cref="Gemm"/>.
    /// </summary>
    IPaddedExpertKernels? PaddedExperts => null;

    /// <summary>A zero tensor from <see cref="Allocator"/> (return it there, or through a scope, when done).</summary>
    /// <param name="dtype">Element type.</param>
    /// <param name="shape">Dimensions.</param>
    Tensor RentZeros(DType dtype, params int[] shape)
    {
        Tensor tensor = Allocator.Rent(dtype, shape);
        Dispatch.Rows.Clear(tensor);
        return tensor;
    }
}
